package pgstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRetry(t *testing.T) {
	serialization := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: codeSerializationFailure})
	deadlock := &pgconn.PgError{Code: codeDeadlock}
	unique := &pgconn.PgError{Code: codeUniqueViolation}
	other := errors.New("connection reset")
	tests := []struct {
		name      string
		errs      []error // returned by the attempts in turn; nil after
		wantCalls int
		wantErr   error
	}{
		{"success", nil, 1, nil},
		{"serialization failure then success", []error{serialization, serialization}, 3, nil},
		{"deadlock then success", []error{deadlock}, 2, nil},
		{"unique violation is not retried", []error{unique}, 1, unique},
		{"other errors are not retried", []error{other}, 1, other},
		{"gives up after maxAttempts", repeat(serialization, maxAttempts+5), maxAttempts, serialization},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retry(t.Context(), func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) {
				t.Errorf("retry: %d calls, err %v; want %d calls, err %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := retry(ctx, func() error {
		calls++
		cancel()
		return &pgconn.PgError{Code: codeSerializationFailure}
	})
	if calls != 1 || !retryable(err) {
		t.Errorf("retry with a cancelled context: %d calls, err %v; want 1 call and the last error", calls, err)
	}
}

func repeat(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}
