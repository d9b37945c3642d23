package oauthd

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// handleJWKS publishes the public signing keys as a JWK Set (RFC 7517 §5):
// the keys that sign now, the next keys (published before they sign) and
// the retired keys whose ID tokens may still be alive. Only public members
// are ever written. Clients may cache the set for a few minutes.
func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	keys, err := p.keys.publicKeys(r.Context())
	if err != nil {
		p.writeJSONError(w, r, serverError(err))
		return
	}
	for _, k := range keys {
		if !k.IsPublic() {
			// Unreachable: publicKeys returns public halves only.
			p.writeJSONError(w, r, serverError(errors.New("oauthd: a private key reached the JWKS")))
			return
		}
	}
	publicCache(w, jwksMaxAge)
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: keys})
}

// publicCache lets anyone cache a public document (discovery, JWKS) for
// maxAge, replacing the no-store the Provider sets by default, and lets
// browser applications of any origin read it.
func publicCache(w http.ResponseWriter, maxAge time.Duration) {
	h := w.Header()
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	h.Del("Pragma")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Del("Vary") // browserCallable's: a public document is the same for every request
}
