package oauthd_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
	"github.com/oauthd/oauthd/ui"
)

// A Provider is an http.Handler; this one serves a client_credentials client.
func ExampleNew() {
	ctx := context.Background()
	store := memstore.New()
	h, _ := oauthd.HashSecret("s3cret")
	store.CreateClient(ctx, &oauthd.Client{ID: "service", SecretHash: h,
		GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read"}})

	pages, err := ui.New(ui.Options{ProductName: "Example"})
	if err != nil {
		log.Fatal(err)
	}
	p, err := oauthd.New(oauthd.Config{Issuer: "https://auth.example.com", Pages: pages}, store)
	if err != nil {
		log.Fatal(err)
	}

	req := httptest.NewRequest("POST", oauthd.TokenPath, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("service", "s3cret")
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("Cache-Control"), strings.Contains(w.Body.String(), `"token_type":"Bearer"`))
	// Output: 200 no-store true
}

// A program with its own login sets Config.LoginURL and finishes each
// request with PendingRequest and Approve (or Deny). Every user it
// approves for is in the store (CreateUser), with the claims its ID token
// and userinfo carry.
func ExampleProvider_Approve() {
	var p *oauthd.Provider // built with oauthd.New(oauthd.Config{LoginURL: "/login", ...}, store)
	http.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		ar, err := p.PendingRequest(r, r.FormValue("request"))
		if err != nil {
			pendingError(w, err)
			return
		}
		// ... authenticate the person and ask for consent (read ar: the
		// client, the scopes; change nothing), then:
		userID := "the-user-id"
		switch err := p.Approve(w, r, ar, userID, time.Now(), ar.Scopes); {
		case err == nil: // the browser is on its way back to the client
		case errors.Is(err, oauthd.ErrLoginRequired):
			// prompt=login, max_age or id_token_hint ask for another
			// login: show the login form again (or answer with Deny).
			http.Error(w, "please sign in again", http.StatusUnauthorized)
		default:
			pendingError(w, err)
		}
	})
}

// pendingError answers an error of PendingRequest or Approve: a request
// that cannot be answered is not the same as a database that is down.
func pendingError(w http.ResponseWriter, err error) {
	var oe *oauthd.Error
	switch {
	case !errors.As(err, &oe):
		log.Print(err) // a mistake of the program: a changed ar, an unknown user
		http.Error(w, "could not finish the sign-in", http.StatusInternalServerError)
	case oe.Code == oauthd.PageRequestExpired:
		http.Error(w, "this sign-in request expired or was already used; start again from the application", http.StatusBadRequest)
	case oe.HTTPStatus() >= 500: // server_error, temporarily_unavailable
		log.Print(err)
		http.Error(w, "the sign-in service is unavailable; try again shortly", oe.HTTPStatus())
	default: // the application's registration changed
		http.Error(w, oe.Description, http.StatusBadRequest)
	}
}
