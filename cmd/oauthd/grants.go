package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/oauthd/oauthd"
)

// cmdGrants lists and revokes the consents users remembered ("remember this
// decision" on the consent page). Revoking also revokes every token the
// user granted that client.
func cmdGrants(ctx context.Context, args []string, e *env) error {
	subs := []string{"list", "revoke"}
	if ok, err := groupHelp(args, e, "grants", subs, "usage: oauthd grants list USERNAME | revoke USERNAME CLIENT_ID\nRun 'oauthd grants SUBCOMMAND --help' for its flags.\n"); !ok {
		return err
	}
	n, what := 1, "one username"
	switch args[0] {
	case "list", "ls":
	case "revoke", "rm", "delete":
		n, what = 2, "a username and a client_id"
	default:
		return unknownSubcommand(e, "grants", args[0], subs)
	}
	fs := newFlagSet("grants "+args[0], e)
	db := dbFlag(fs, e)
	var asJSON *bool
	if n == 1 {
		asJSON = jsonFlag(fs)
	}
	pos, err := parse(fs, args[1:], n, what)
	if err != nil {
		return err
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
		out := make([]consentJSON, 0, len(cs))
		for _, c := range cs {
			if ok, err := consentCounts(ctx, s, c); err != nil {
				return err
			} else if ok {
				out = append(out, consentJSON{ClientID: c.ClientID, Scopes: orEmpty(c.Scopes), UpdatedAt: jsonTime(c.UpdatedAt)})
			}
		}
		if *asJSON {
			return writeJSON(e, out)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tSCOPES\tUPDATED")
		for _, c := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ClientID, strings.Join(c.Scopes, " "), c.UpdatedAt)
		}
		return tw.Flush()
	}
	// The tokens go first, then the consent: a failure leaves the
	// consent, so the same command can be run again. A user who approved
	// without remembering has tokens but no consent: those are revoked
	// all the same, if the client exists.
	remembered := true
	if _, err := s.Consent(ctx, u.ID, pos[1]); errors.Is(err, oauthd.ErrNotFound) {
		remembered = false
		if _, err := findClient(ctx, s, pos[1]); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := s.RevokeTokensOf(ctx, u.ID, pos[1]); err != nil {
		return fmt.Errorf("revoke the tokens of %s for %s: %w", u.Username, pos[1], err)
	}
	if !remembered {
		fmt.Fprintf(e.stdout, "%s has no remembered consent for %s; revoked every token %s granted it and its unused codes\n", u.Username, pos[1], u.Username)
		return nil
	}
	if err := s.DeleteConsent(ctx, u.ID, pos[1]); err != nil && !errors.Is(err, oauthd.ErrNotFound) {
		return fmt.Errorf("the tokens are revoked but forgetting the consent failed (run the command again): %w", err)
	}
	fmt.Fprintf(e.stdout, "revoked the consent of %s for %s, every token it granted and its unused codes\n", u.Username, pos[1])
	return nil
}

// consentCounts reports whether the server honours the remembered
// consent: its client exists and was registered before it (a consent given
// to an earlier client with the same client_id, deleted since, counts for
// nothing: oauthd.Client.Predates).
func consentCounts(ctx context.Context, s oauthd.Storage, cs *oauthd.Consent) (bool, error) {
	c, err := s.Client(ctx, cs.ClientID)
	if errors.Is(err, oauthd.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return !c.Predates(cs.UpdatedAt), nil
}
