package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oauthd/oauthd"
)

// cmdGrants lists and revokes the consents users remembered ("remember this
// decision" on the consent page). Revoking also revokes every token the
// user granted that client.
func cmdGrants(ctx context.Context, args []string, e *env) error {
	if ok, err := groupHelp(args, e, "usage: oauthd grants list USERNAME | revoke USERNAME CLIENT_ID\nRun 'oauthd grants SUBCOMMAND --help' for its flags.\n"); !ok {
		return err
	}
	fs := newFlagSet("grants "+args[0], e)
	db := dbFlag(fs, e)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "list", "ls":
		if err := wantArgs(pos, 1, "one username"); err != nil {
			return err
		}
	case "revoke", "rm", "delete":
		if err := wantArgs(pos, 2, "a username and a client_id"); err != nil {
			return err
		}
	default:
		fmt.Fprintf(e.stderr, "oauthd grants: unknown subcommand %q (list, revoke)\n", args[0])
		return errUsage
	}
	s, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := findUser(ctx, s, pos[0])
	if err != nil {
		return err
	}
	if args[0] == "list" || args[0] == "ls" {
		cs, err := s.Consents(ctx, u.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tSCOPES\tUPDATED")
		for _, c := range cs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ClientID, strings.Join(c.Scopes, " "), c.UpdatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	if err := s.DeleteConsent(ctx, u.ID, pos[1]); errors.Is(err, oauthd.ErrNotFound) {
		return fmt.Errorf("user %s has no remembered consent for client %q", u.Username, pos[1])
	} else if err != nil {
		return err
	}
	if err := s.RevokeTokensOf(ctx, u.ID, pos[1]); err != nil {
		return fmt.Errorf("the consent is gone but revoking the tokens failed (run the command again): %w", err)
	}
	fmt.Fprintf(e.stdout, "revoked the consent of %s for %s and every token it granted\n", u.Username, pos[1])
	return nil
}
