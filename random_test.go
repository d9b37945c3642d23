package oauthd_test

import (
	"testing"

	"github.com/oauthd/oauthd"
)

// Grant IDs are unique and grow with the clock (as strings), so B-tree
// stores append them to their grant index.
func TestNewGrantID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := oauthd.NewGrantID()
		if len(id) != 38 {
			t.Fatalf("grant ID %q has %d characters; want 38", id, len(id))
		}
		if seen[id] {
			t.Fatalf("grant ID %q twice", id)
		}
		seen[id] = true
		if id[:16] < prev {
			t.Fatalf("grant ID %q sorts before the previous one's time %q", id, prev)
		}
		prev = id[:16]
	}
}
