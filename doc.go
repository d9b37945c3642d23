// Package oauthd is an OAuth 2.1 and OpenID Connect authorization server.
//
// The package holds the domain types (Client, User, AuthCode, Token...), the
// storage interfaces every backend implements, the Error type that carries an
// RFC 6749 error code, and Provider: the protocol engine as net/http handlers.
//
// A Provider is built with New from a Config and a Storage:
//
//	p, err := oauthd.New(oauthd.Config{Issuer: "https://auth.example.com", Pages: pages}, store)
//	http.ListenAndServe(":8000", p)
//
// Stores live in their own packages (memstore, sqlitestore, pgstore) and all
// pass the conformance suite in storetest. The login, consent and error pages
// live in package ui.
package oauthd
