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
// A request whose scope has openid is an OpenID Connect request (OpenID
// Connect Core 1.0): the token endpoint adds an ID token, the userinfo
// endpoint answers the user's claims, and the discovery document
// (OIDCDiscoveryPath, also served at OAuthMetadataPath) and the JWKS
// (JWKSPath) describe the server. ID tokens are signed with keys the
// Provider's KeyManager creates, stores and rotates through the KeyStore,
// so every node of a cluster shares them.
//
// A Provider serves at fixed paths from the root of its host (mount it at
// "/", or at /oauth/, /.well-known/ and /static/ of a mux; not under
// http.StripPrefix). It starts no goroutines: signing keys are made and
// rotated as requests come (KeyManager.Ensure makes them at start), and
// expired records are deleted by the program (Storage.DeleteExpired).
//
// Stores live in their own packages (memstore, sqlitestore, pgstore) and all
// pass the conformance suite in storetest. They keep what they are given:
// check a Client with Client.Validate before storing it. A program that
// wraps a store reads Storage's notes on wrapping first. The login,
// consent and error pages live in package ui; a program with its own login
// sets Config.LoginURL and answers each request with
// Provider.PendingRequest, then Approve or Deny, which answer from the
// request as stored.
package oauthd
