package oauthd_test

import (
	"context"
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
// request with PendingRequest and Approve (or Deny).
func ExampleProvider_Approve() {
	var p *oauthd.Provider // built with oauthd.New(oauthd.Config{LoginURL: "/login", ...}, store)
	http.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		ar, err := p.PendingRequest(r, r.FormValue("request"))
		if err != nil {
			http.Error(w, "this sign-in request expired", http.StatusBadRequest)
			return
		}
		// ... authenticate the person and ask for consent, then:
		userID := "the-user-id"
		if err := p.Approve(w, r, ar, userID, time.Now(), ar.Scopes); err != nil {
			http.Error(w, "could not finish the sign-in", http.StatusInternalServerError)
		}
	})
}
