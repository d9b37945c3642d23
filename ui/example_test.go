package ui_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/ui"
)

// ExampleNew builds the pages with a product name, a brand colour and the
// description of a custom scope, and mounts their static files where the
// Provider does.
func ExampleNew() {
	pages, err := ui.New(ui.Options{
		ProductName:       "Example ID",
		PrimaryColor:      "#0b5394",
		ScopeDescriptions: map[string]string{"calendar.read": "See your calendar"},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(oauthd.StaticPath, pages.Static()) // the handler expects the /static/ prefix

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/static/theme.css", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output: 200 text/css; charset=utf-8
}

// ExamplePages_Consent renders the consent page of the seed walkthrough in
// French, as a browser asking for fr-CA would get it.
func ExamplePages_Consent() {
	pages, err := ui.New(ui.Options{})
	if err != nil {
		log.Fatal(err)
	}
	w := httptest.NewRecorder()
	pages.Consent(w, httptest.NewRequest(http.MethodGet, "/oauth/authorize", nil), &oauthd.ConsentPage{
		Page:   oauthd.Page{Locales: []string{"fr-CA"}},
		Action: "/oauth/authorize",
		Client: &oauthd.Client{ID: "test_client"},
		User:   &oauthd.User{Username: "admin"},
		Scopes: []string{"email"},
	})
	// The client's name is isolated (U+2068 … U+2069, invisible): left
	// out here.
	unisolate := strings.NewReplacer("\u2068", "", "\u2069", "")
	for _, m := range regexp.MustCompile(`<(?:h1|li|button)[^>]*>(.*)</`).FindAllStringSubmatch(w.Body.String(), -1) {
		fmt.Println(unisolate.Replace(m[1]))
	}
	// Output:
	// test_client demande des autorisations
	// Voir votre adresse e-mail <code>email</code>
	// Autoriser
	// Refuser
}
