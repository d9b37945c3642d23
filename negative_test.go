package oauthd_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// negCase is one hostile or malformed request and the exact answer the
// server owes it.
type negCase struct {
	name string
	// env is envFake (default), envUI or envPassword.
	env string
	// req builds the request; it may first run setup steps in the env.
	req func(n *negEnv) *negReq
	// status is the exact HTTP status.
	status int
	// code is the exact error code: the error parameter of a redirect or
	// form_post, the code of an error page, or the JSON error; "" for none.
	code string
	// loc is "" when there must be no Location, else the prefix the
	// Location must start with.
	loc string
	// header are exact header values.
	header map[string]string
	// check asserts more (state echoed, tokens still active...).
	check func(t *testing.T, n *negEnv, r *response)
}

var (
	otherAuth   = basic("other", "other-secret")
	serviceAuth = basic("service", "service-secret")
	pageHeaders = map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
	allowPost   = map[string]string{"Allow": "POST"}
	inactive    = func(t *testing.T, n *negEnv, r *response) {
		if strings.TrimSpace(r.body) != `{"active":false}` {
			t.Errorf("body %s; want exactly {\"active\":false} (RFC 7662 §2.2)", r.body)
		}
	}
	emptyBody = func(t *testing.T, n *negEnv, r *response) {
		if r.body != "" {
			t.Errorf("body %q; want none (RFC 7009 §2.2)", r.body)
		}
	}
	stateEchoed = func(t *testing.T, n *negEnv, r *response) {
		u, _ := url.Parse(r.location())
		q := u.Query()
		if u.Fragment != "" {
			q, _ = url.ParseQuery(u.Fragment)
		}
		if q.Get("state") != "somestate" || q.Get("code") != "" || q.Get("access_token") != "" {
			t.Errorf("redirect %q: want state=somestate and no code or token (RFC 6749 §4.1.2.1)", r.location())
		}
	}
	stateNotEchoed = func(t *testing.T, n *negEnv, r *response) {
		if u, _ := url.Parse(r.location()); u == nil || u.Query().Has("state") || u.Query().Get("code") != "" {
			t.Errorf("redirect %q: want no state (the error is about it) and no code", r.location())
		}
	}
	issUnchanged = func(t *testing.T, n *negEnv, r *response) {
		u, _ := url.Parse(r.location())
		if got := u.Query().Get("iss"); got != n.issuer {
			t.Errorf("iss %q; want the configured issuer %q whatever the request's headers say", got, n.issuer)
		}
	}
)

// lure is request text an attacker would like a client to show as an
// error message.
const lure = "Your account is locked. Call +1-555-0100 — Support"

// noLure checks that no error_description of the answer repeats the lure
// or the grant type's markup.
var noLure = func(t *testing.T, n *negEnv, r *response) {
	for where, d := range errorDescriptions(r) {
		if strings.Contains(d, "account is locked") || strings.Contains(d, "img") {
			t.Errorf("%s error_description %q repeats the request's text", where, d)
		}
	}
}

// big is a 1 MiB parameter value.
var big = strings.Repeat("a", 1<<20)

// The negative battery: every case is named by the section it enforces and
// asserts the exact status, error code, whether there is a Location and
// where it points, and key headers. checkInvariants adds to every case: no
// Location or form_post to an unregistered URI, iss on every authorization
// response, no-store on every protocol answer, WWW-Authenticate on every
// 401, no 5xx, no payload echoed unescaped.
func TestNegativeBattery(t *testing.T) {
	cases := []negCase{
		// Redirect URI tricks: an error page, never a redirect (RFC 6749
		// §3.1.2.4, §4.1.2.1; RFC 9700 §4.1.3: exact string matching).
		{name: "RFC9700_4.1.3/redirect_uri_trailing_slash", req: authzPage("redirect_uri", redirectURI+"/"), status: 400, code: oauthd.PageInvalidRedirectURI, header: pageHeaders},
		{name: "RFC9700_4.1.3/redirect_uri_host_case", req: authzPage("redirect_uri", "https://WWW.EXAMPLE.COM/redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_path_case", req: authzPage("redirect_uri", "https://www.example.com/Redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_scheme_case", req: authzPage("redirect_uri", "HTTPS://www.example.com/redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_extra_query", req: authzPage("redirect_uri", redirectURI+"?next=https://evil.example"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_3.1.2/redirect_uri_fragment", req: authzPage("redirect_uri", redirectURI+"#x"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_3.1.2/redirect_uri_empty_fragment", req: authzPage("redirect_uri", redirectURI+"#"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_userinfo_at_evil", req: authzPage("redirect_uri", "https://www.example.com@evil.example/redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_userinfo_before_host", req: authzPage("redirect_uri", "https://evil.example@www.example.com/redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_backslash_at", req: authzPage("redirect_uri", `https://www.example.com\@evil.example/redirect`), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_path_traversal", req: authzPage("redirect_uri", redirectURI+"/../../evil"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_dot_segment", req: authzPage("redirect_uri", "https://www.example.com/./redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_percent_encoded_path", req: authzPage("redirect_uri", "https://www.example.com/%72edirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_encoded_traversal", req: authzPage("redirect_uri", redirectURI+"/%2e%2e/evil"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_encoded_slash", req: authzPage("redirect_uri", "https://www.example.com%2Fredirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_default_port", req: authzPage("redirect_uri", "https://www.example.com:443/redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_http_downgrade", req: authzPage("redirect_uri", "http://www.example.com/redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_suffix_host", req: authzPage("redirect_uri", "https://www.example.com.evil.example/redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_homograph", req: authzPage("redirect_uri", "https://www.exаmple.com/redirect"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_trailing_space", req: authzPage("redirect_uri", redirectURI+" "), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC9700_4.1.3/redirect_uri_nul", req: authzPage("redirect_uri", redirectURI+"\x00"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_3.1.2.4/redirect_uri_of_another_client", req: authzPage("redirect_uri", "https://other.example/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_extra_query", req: publicPage("redirect_uri", loopbackCB+"?x=1"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_ip_prefix_host", req: publicPage("redirect_uri", "http://127.0.0.1.evil.example/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_8.3/localhost_evil_host", req: publicPage("redirect_uri", "http://localhost.evil.example:5555/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_8.3/localhost_name_for_ip_literal", req: publicPage("redirect_uri", "http://localhost:5555/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_https", req: publicPage("redirect_uri", "https://127.0.0.1:5555/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_userinfo", req: publicPage("redirect_uri", "http://127.0.0.1:5555@evil.example/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_path_traversal", req: publicPage("redirect_uri", "http://127.0.0.1:5555/cb/../evil"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_empty_port", req: publicPage("redirect_uri", "http://127.0.0.1:/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_port_0", req: publicPage("redirect_uri", "http://127.0.0.1:0/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_port_over_65535", req: publicPage("redirect_uri", "http://127.0.0.1:99999/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_port_leading_zero", req: publicPage("redirect_uri", "http://127.0.0.1:0080/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_ipv4_mapped", req: publicPage("redirect_uri", "http://[::ffff:127.0.0.1]:5555/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.3/loopback_fragment", req: publicPage("redirect_uri", loopbackCB+"#x"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC8252_7.1/private_scheme_with_authority", req: publicPage("redirect_uri", "com.example.app://cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_3.1.2.3/redirect_uri_missing_several_registered", req: publicPage("redirect_uri", ""), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "OIDC_3.1.2.1/redirect_uri_missing", req: authzPage("redirect_uri", "", "scope", "openid email"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_3.1/redirect_uri_repeated", req: func(n *negEnv) *negReq {
			return get(raw(n.authz(), "redirect_uri="+url.QueryEscape(redirectURI)))
		}, status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_4.1.2.1/client_id_unknown", req: authzPage("client_id", "nobody"), status: 400, code: oauthd.PageUnknownClient},
		{name: "RFC6749_4.1.2.1/client_id_missing", req: authzPage("client_id", ""), status: 400, code: oauthd.PageUnknownClient},
		{name: "RFC6749_4.1.2.1/client_id_case", req: authzPage("client_id", "TEST_CLIENT"), status: 400, code: oauthd.PageUnknownClient},
		{name: "RFC6749_3.1/client_id_repeated", req: func(n *negEnv) *negReq { return get(raw(n.authz(), "client_id=other")) }, status: 400, code: oauthd.PageUnknownClient},

		// Never redirect to an unvalidated URI, whatever else is wrong
		// (RFC 6749 §4.1.2.1, RFC 9700 §4.1).
		{name: "RFC6749_4.1.2.1/bad_response_type_and_bad_redirect_uri", req: authzPage("response_type", "foo", "redirect_uri", "https://evil.example/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_4.1.2.1/bad_scope_and_unknown_client", req: authzPage("scope", "admin", "client_id", "nobody"), status: 400, code: oauthd.PageUnknownClient},
		{name: "OIDC_Core_3.1.2.6/prompt_none_and_bad_redirect_uri", req: authzPage("prompt", "none", "redirect_uri", "https://evil.example/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "OAuthFormPost_2/form_post_and_bad_redirect_uri", req: authzPage("response_mode", "form_post", "response_type", "foo", "redirect_uri", "https://evil.example/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_4.2.2.1/implicit_and_bad_redirect_uri", req: authzPage("response_type", "token", "redirect_uri", "https://evil.example/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},
		// Parameters that are not text: an unknown one is ignored (RFC 6749
		// §3.1: MUST ignore), a known one is invalid_request, redirected
		// once client_id and redirect_uri are valid (§4.1.2.1), without
		// echoing the state when it is the one.
		{name: "RFC6749_3.1/invalid_utf8_unknown_parameter_ignored", req: func(n *negEnv) *negReq { return get(raw(n.authz(), "x=%ff")) }, status: 303, loc: oauthd.LoginPath + "?"},
		{name: "RFC6749_3.1/invalid_utf8_parameter_name_ignored", req: func(n *negEnv) *negReq { return get(raw(n.authz(), "%ff%00=1")) }, status: 303, loc: oauthd.LoginPath + "?"},
		{name: "RFC6749_4.1.2.1/invalid_utf8_state", req: authzPage("state", "a\xffb"), status: 303, code: "invalid_request", loc: redirectURI + "?", check: stateNotEchoed},
		{name: "RFC6749_4.1.2.1/nul_in_state", req: authzPage("state", "a\x00b"), status: 303, code: "invalid_request", loc: redirectURI + "?", check: stateNotEchoed},
		{name: "RFC6749_4.1.2.1/invalid_utf8_scope", req: authzPage("scope", "openid \xff"), status: 303, code: "invalid_request", loc: redirectURI + "?", check: stateEchoed},
		{name: "RFC6749_4.1.2.1/invalid_utf8_client_id_is_a_page", req: authzPage("client_id", "\xff"), status: 400, code: oauthd.PageUnknownClient},
		{name: "RFC6749_4.1.2.1/invalid_utf8_redirect_uri_is_a_page", req: authzPage("redirect_uri", redirectURI+"\xff"), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_3.1/bad_percent_encoding_is_a_page", req: func(n *negEnv) *negReq { return get(raw(n.authz(), "x=%zz")) }, status: 400, code: oauthd.PageBadRequest},

		// Errors after the redirect URI is validated go back to it with
		// error, state and iss (RFC 6749 §4.1.2.1, RFC 9207 §2).
		{name: "RFC6749_4.1.2.1/response_type_missing", req: authzPage("response_type", ""), status: 303, code: "invalid_request", loc: redirectURI + "?", check: stateEchoed},
		{name: "RFC6749_4.1.2.1/response_type_unknown", req: authzPage("response_type", "foo"), status: 303, code: "unsupported_response_type", loc: redirectURI + "?", check: stateEchoed},
		{name: "OAuth2.1_4.1.1/implicit_disabled", req: authzPage("response_type", "token"), status: 303, code: "unsupported_response_type", loc: redirectURI + "#", check: stateEchoed},
		{name: "RFC6749_4.1.2.1/unauthorized_client", req: authzPage("client_id", "cc_redirect", "redirect_uri", ccRedirectURI), status: 303, code: "unauthorized_client", loc: ccRedirectURI + "?"},
		{name: "RFC6749_3.1/response_type_repeated", req: func(n *negEnv) *negReq { return get(raw(n.authz(), "response_type=token")) }, status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC6749_3.1/scope_repeated", req: func(n *negEnv) *negReq { return get(raw(n.authz(), "scope=email")) }, status: 303, code: "invalid_request", loc: redirectURI + "?", check: stateEchoed},
		{name: "RFC6749_3.1/state_repeated", req: func(n *negEnv) *negReq { return get(raw(n.authz(), "state=other")) }, status: 303, code: "invalid_request", loc: redirectURI + "?",
			check: func(t *testing.T, n *negEnv, r *response) {
				if strings.Contains(r.location(), "state=") {
					t.Errorf("a repeated state was echoed: %s", r.location())
				}
			}},
		{name: "RFC6749_3.1/response_mode_repeated", req: func(n *negEnv) *negReq { return get(raw(n.authz("response_mode", "query"), "response_mode=fragment")) }, status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC6749_3.3/scope_not_allowed", req: authzPage("scope", "email admin"), status: 303, code: "invalid_scope", loc: redirectURI + "?", check: stateEchoed},
		{name: "RFC6749_3.3/scope_quote", req: authzPage("scope", `em"ail`), status: 303, code: "invalid_scope", loc: redirectURI + "?"},
		{name: "RFC6749_3.3/scope_backslash", req: authzPage("scope", `a\b`), status: 303, code: "invalid_scope", loc: redirectURI + "?"},
		{name: "RFC6749_3.3/scope_non_ascii", req: authzPage("scope", "émail"), status: 303, code: "invalid_scope", loc: redirectURI + "?"},
		{name: "RFC7636_4.3/plain_disabled", req: authzPage("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "plain"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.3/default_method_is_plain", req: authzPage("code_challenge", strings.Repeat("a", 43)), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.2/challenge_42_chars", req: authzPage("code_challenge", strings.Repeat("a", 42), "code_challenge_method", "S256"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.2/challenge_129_chars", req: authzPage("code_challenge", strings.Repeat("a", 129), "code_challenge_method", "S256"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.2/challenge_plus_slash", req: authzPage("code_challenge", strings.Repeat("a+/", 15), "code_challenge_method", "S256"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.2/challenge_padding", req: authzPage("code_challenge", strings.Repeat("a", 43)+"=", "code_challenge_method", "S256"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.3/method_lowercase", req: authzPage("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "s256"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.3/method_unknown", req: authzPage("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "S512"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.3/method_without_challenge", req: authzPage("code_challenge_method", "S256"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.3/challenge_repeated", req: func(n *negEnv) *negReq {
			return get(raw(n.authz("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "S256"), "code_challenge="+strings.Repeat("b", 43)))
		}, status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "RFC7636_4.3/method_repeated", req: func(n *negEnv) *negReq {
			return get(raw(n.authz("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "S256"), "code_challenge_method=plain"))
		}, status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "OAuth2.1_4.1.1/public_client_without_pkce", req: func(n *negEnv) *negReq {
			return get(n.publicAuthz("code_challenge", "", "code_challenge_method", ""))
		}, status: 303, code: "invalid_request", loc: loopbackCB + "?"},
		{name: "RFC9700_2.1.1/confidential_client_requiring_pkce", req: authzPage("client_id", "pkce_required", "redirect_uri", pkceRedirect), status: 303, code: "invalid_request", loc: pkceRedirect + "?"},
		{name: "OIDC_Core_6.1/request_object_not_supported", req: authzPage("request", "eyJhbGciOiJub25lIn0.e30."), status: 303, code: "request_not_supported", loc: redirectURI + "?"},
		{name: "RFC6749_3.1/empty_request_and_request_uri_are_omitted", req: func(n *negEnv) *negReq { return get(n.authz() + "&request=&request_uri=") }, status: 303, loc: oauthd.LoginPath},
		{name: "OIDC_Core_6.2/request_uri_not_supported", req: authzPage("request_uri", "https://evil.example/r"), status: 303, code: "request_uri_not_supported", loc: redirectURI + "?"},
		{name: "OIDC_Core_3.1.2.1/prompt_none_with_login", req: authzPage("prompt", "none login"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "OIDC_Core_3.1.2.1/prompt_unknown", req: authzPage("prompt", "always"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "OIDC_Core_3.1.2.1/max_age_negative", req: authzPage("max_age", "-1"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "OIDC_Core_3.1.2.1/max_age_not_a_number", req: authzPage("max_age", "1e3"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "OIDC_Core_5.5/claims_not_json", req: authzPage("claims", "{"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "OIDC_Core_3.1.2.6/prompt_none_not_signed_in", req: authzPage("prompt", "none"), status: 303, code: "login_required", loc: redirectURI + "?", check: stateEchoed},
		{name: "OAuthMultipleResponseTypes_5/query_mode_with_token", req: authzPage("response_type", "token", "response_mode", "query"), status: 303, code: "invalid_request", loc: redirectURI + "#"},
		{name: "OAuthMultipleResponseTypes_2.1/response_mode_unknown", req: authzPage("response_mode", "web_message"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		// error_description carries no text of the request's choosing to
		// the client (a lure shown as the client's or the server's words)
		// and only the characters RFC 6749 §4.1.2.1 allows (checked for
		// every case by checkInvariants).
		{name: "RFC6749_4.1.2.1/error_description_no_injected_text", req: authzPage("response_mode", lure), status: 303, code: "invalid_request", loc: redirectURI + "?", check: noLure},
		{name: "RFC6749_4.1.2.1/error_description_no_injected_prompt", req: authzPage("prompt", lure), status: 303, code: "invalid_request", loc: redirectURI + "?", check: noLure},
		{name: "RFC6749_4.1.2.1/error_description_no_injected_method", req: authzPage("code_challenge", strings.Repeat("a", 43), "code_challenge_method", lure), status: 303, code: "invalid_request", loc: redirectURI + "?", check: noLure},
		{name: "RFC6749_4.1.2.1/error_description_no_injected_response_type", req: authzPage("response_type", lure), status: 303, code: "unsupported_response_type", loc: redirectURI + "?", check: noLure},
		// Free-form parameters are bounded: a pending request is stored
		// before anyone signs in.
		{name: "RFC6749_4.1.2.1/state_over_4096_bytes", req: authzPage("state", strings.Repeat("s", 4097)), status: 303, code: "invalid_request", loc: redirectURI + "?",
			check: func(t *testing.T, n *negEnv, r *response) {
				if strings.Contains(r.location(), "state=") {
					t.Errorf("the oversized state was echoed: %.200s", r.location())
				}
			}},
		{name: "RFC6749_4.1.1/state_of_4096_bytes", req: authzPage("state", strings.Repeat("s", 4096)), status: 303, loc: oauthd.LoginPath},
		{name: "OIDC_Core_3.1.2.1/nonce_over_4096_bytes", req: func(n *negEnv) *negReq { return get(n.rpAuthz("nonce", strings.Repeat("n", 4097))) },
			status: 303, code: "invalid_request", loc: rpRedirectURI + "?", check: stateEchoed},
		{name: "OIDC_Core_3.1.2.1/login_hint_over_1024_bytes", req: func(n *negEnv) *negReq { return get(n.rpAuthz("login_hint", strings.Repeat("a", 1025))) },
			status: 303, code: "invalid_request", loc: rpRedirectURI + "?", check: stateEchoed},
		{name: "OIDC_Core_5.5/claims_over_8192_bytes", req: func(n *negEnv) *negReq {
			return get(n.rpAuthz("claims", `{"userinfo":{"email":null,"x":"`+strings.Repeat("a", 8192)+`"}}`))
		}, status: 303, code: "invalid_request", loc: rpRedirectURI + "?", check: stateEchoed},
		{name: "RFC6749_4.1.2.1/error_description_ascii_only", req: authzPage("code_challenge", strings.Repeat("a", 42), "code_challenge_method", "S256"), status: 303, code: "invalid_request", loc: redirectURI + "?"},
		{name: "OAuthFormPost_2/error_by_form_post", req: authzPage("response_mode", "form_post", "scope", "admin"), status: 200, code: "invalid_scope",
			check: func(t *testing.T, n *negEnv, r *response) {
				if r.pageKind() != "form_post" || r.str("Action") != redirectURI {
					t.Errorf("want a form_post page to %s, got %s", redirectURI, describe(r))
				}
			}},
		{name: "RFC6749_3.1/authorize_PUT", req: func(n *negEnv) *negReq { return &negReq{method: "PUT", target: n.authz()} }, status: 405, code: oauthd.PageMethodNotAllowed,
			header: map[string]string{"Allow": "GET, HEAD, POST"}},
		{name: "RFC6749_3.1/authorize_POST_body_1MiB", req: func(n *negEnv) *negReq {
			return post(oauthd.AuthorizePath, "client_id", clientID, "redirect_uri", redirectURI, "response_type", "code", "pad", big)
		}, status: 413, code: oauthd.PageBadRequest},
		{name: "RFC6749_3.1/authorize_POST_text_plain", req: func(n *negEnv) *negReq {
			q := post(oauthd.AuthorizePath, "client_id", clientID, "redirect_uri", redirectURI, "response_type", "code")
			q.ctype = "text/plain"
			return q
		}, status: 400, code: oauthd.PageBadRequest},
		{name: "RFC6749_3.1/url_16KiB_unknown_parameter_ignored", req: authzPage("x", strings.Repeat("a", 16<<10)), status: 303, loc: oauthd.LoginPath + "?"},
		{name: "RFC6749_3.1/url_16KiB_with_bad_redirect_uri", req: authzPage("state", strings.Repeat("s", 16<<10), "redirect_uri", "https://evil.example/cb"), status: 400, code: oauthd.PageInvalidRedirectURI},

		// Token endpoint: client authentication (RFC 6749 §2.3, §5.2).
		{name: "RFC6749_5.2/wrong_secret", req: tokenReq(basic(clientID, "wrong"), "grant_type", "client_credentials"), status: 401, code: "invalid_client",
			header: map[string]string{"WWW-Authenticate": `Basic realm="oauthd", charset="UTF-8"`}},
		{name: "RFC6749_5.2/unknown_client", req: tokenReq(basic("nobody", "x"), "grant_type", "client_credentials"), status: 401, code: "invalid_client"},
		{name: "RFC6749_5.2/no_client_authentication", req: tokenReq("", "grant_type", "client_credentials"), status: 401, code: "invalid_client"},
		{name: "RFC6749_2.3.1/basic_bad_base64", req: tokenReq("Basic !!!", "grant_type", "client_credentials"), status: 401, code: "invalid_client"},
		{name: "RFC6749_2.3.1/basic_without_colon", req: tokenReq("Basic c2VydmljZQ==", "grant_type", "client_credentials"), status: 401, code: "invalid_client"},
		{name: "RFC6749_2.3.1/basic_empty_client_id", req: tokenReq(basic("", "service-secret"), "grant_type", "client_credentials"), status: 401, code: "invalid_client"},
		{name: "RFC6749_2.3.1/basic_nul_in_client_id", req: tokenReq(basic("service\x00", "service-secret"), "grant_type", "client_credentials"), status: 401, code: "invalid_client"},
		{name: "RFC9110_15.5.16/compressed_body", req: func(n *negEnv) *negReq {
			q := api(oauthd.TokenPath, seedAuth, "grant_type", "client_credentials")
			q.header = map[string]string{"Content-Encoding": "gzip"}
			return q
		}, status: 415, code: "invalid_request", header: map[string]string{"Accept-Encoding": "identity"}},
		{name: "RFC6749_3.2/too_many_parameters", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.TokenPath, auth: seedAuth,
				body: "grant_type=client_credentials" + strings.Repeat("&p=1", 1500)}
		}, status: 400, code: "invalid_request"},
		// One credential per request: which of two Authorization headers
		// counts would be a guess (RFC 6749 §2.3).
		{name: "RFC6749_2.3/two_authorization_headers", req: func(n *negEnv) *negReq {
			q := api(oauthd.TokenPath, seedAuth, "grant_type", "client_credentials")
			q.also = map[string]string{"Authorization": otherAuth}
			return q
		}, status: 400, code: "invalid_request"},
		{name: "RFC6750_2.1/bearer_is_not_client_authentication", req: tokenReq("Bearer abc", "grant_type", "client_credentials"), status: 401, code: "invalid_client"},
		{name: "RFC6749_2.3/two_authentication_methods", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "client_secret", "service-secret"), status: 400, code: "invalid_request"},
		{name: "RFC6749_2.3.1/client_id_differs_from_basic", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "client_id", clientID), status: 400, code: "invalid_request"},
		{name: "RFC6749_2.3.1/client_secret_without_client_id", req: tokenReq("", "grant_type", "client_credentials", "client_secret", "service-secret"), status: 401, code: "invalid_client"},
		{name: "RFC6749_2.3.1/confidential_client_id_only", req: tokenReq("", "grant_type", "client_credentials", "client_id", "service"), status: 401, code: "invalid_client"},
		{name: "RFC6749_2.1/public_client_with_secret", req: tokenReq(basic("public_app", "guess"), "grant_type", "refresh_token", "refresh_token", "x"), status: 401, code: "invalid_client"},
		// RFC 6749 §3.1: a parameter without a value counts as omitted;
		// the public client is authenticated, and its (unknown) refresh
		// token refused.
		{name: "RFC6749_3.1/public_client_empty_client_secret_is_omitted", req: tokenReq("", "grant_type", "refresh_token", "refresh_token", "x", "client_id", "public_app", "client_secret", ""), status: 400, code: "invalid_grant"},
		{name: "RFC6749_3.1/basic_and_empty_client_secret", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "client_secret", ""), status: 200},
		{name: "RFC6749_3.1/grant_type_empty_and_repeated", req: tokenReq(serviceAuth, "grant_type", "", "grant_type", "client_credentials"), status: 200},
		{name: "RFC6749_3.2/invalid_utf8_unknown_parameter_ignored", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.TokenPath, body: "grant_type=client_credentials&x=%ff&%ff=%00", auth: serviceAuth}
		}, status: 200},
		{name: "RFC6749_3.2/client_id_repeated", req: tokenReq("", "grant_type", "client_credentials", "client_id", "service", "client_id", "service", "client_secret", "service-secret"), status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/client_secret_repeated", req: tokenReq("", "grant_type", "client_credentials", "client_id", "service", "client_secret", "service-secret", "client_secret", "x"), status: 400, code: "invalid_request"},

		// Token endpoint: request syntax (RFC 6749 §3.2, §5.2).
		{name: "RFC6749_3.2/grant_type_repeated", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "grant_type", "client_credentials"), status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/scope_repeated", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "scope", "read", "scope", "write"), status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/code_repeated", req: tokenReq(seedAuth, "grant_type", "authorization_code", "code", "a", "code", "b", "redirect_uri", redirectURI), status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/redirect_uri_repeated", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.code(), "redirect_uri", redirectURI, "redirect_uri", redirectURI)
		}, status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/code_verifier_repeated", req: tokenReq(seedAuth, "grant_type", "authorization_code", "code", "a", "redirect_uri", redirectURI, "code_verifier", verifier, "code_verifier", verifier), status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/refresh_token_repeated", req: tokenReq(seedAuth, "grant_type", "refresh_token", "refresh_token", "a", "refresh_token", "b"), status: 400, code: "invalid_request"},
		{name: "RFC6749_5.2/grant_type_missing", req: tokenReq(serviceAuth, "scope", "read"), status: 400, code: "invalid_request"},
		{name: "RFC6749_5.2/grant_type_unknown", req: tokenReq(serviceAuth, "grant_type", "magic"), status: 400, code: "unsupported_grant_type"},
		{name: "RFC6749_5.2/error_description_charset", req: tokenReq(serviceAuth, "grant_type", "<img src=x>é\"\\"), status: 400, code: "unsupported_grant_type", check: noLure},
		{name: "RFC6749_5.2/grant_type_named_in_description", req: tokenReq(serviceAuth, "grant_type", "urn:ietf:params:oauth:grant-type:device_code"), status: 400, code: "unsupported_grant_type",
			check: func(t *testing.T, n *negEnv, r *response) {
				if d := r.str("error_description"); !strings.Contains(d, "'urn:ietf:params:oauth:grant-type:device_code'") {
					t.Errorf("error_description %q; want it to name the registered grant type the client sent", d)
				}
			}},
		{name: "RFC6749_4.1.2.1/unregistered_value_not_repeated", req: tokenReq(serviceAuth, "grant_type", "Your_account_is_locked_call_555-0199"), status: 400, code: "unsupported_grant_type",
			check: func(t *testing.T, n *negEnv, r *response) {
				if d := r.str("error_description"); strings.Contains(d, "locked") {
					t.Errorf("error_description %q repeats the request's own words", d)
				}
			}},
		{name: "OAuth2.1_10.1/password_grant_disabled", req: tokenReq(seedAuth, "grant_type", "password", "username", "admin", "password", "admin"), status: 400, code: "unsupported_grant_type"},
		{name: "OAuth2.1_10.2/implicit_is_not_a_grant_type", req: tokenReq(seedAuth, "grant_type", "implicit"), status: 400, code: "unsupported_grant_type"},
		{name: "RFC6749_4.4/client_credentials_not_allowed", req: tokenReq(seedAuth, "grant_type", "client_credentials"), status: 400, code: "unauthorized_client"},
		{name: "RFC6749_4.4/client_credentials_public_client", req: tokenReq("", "grant_type", "client_credentials", "client_id", "public_app"), status: 400, code: "unauthorized_client"},
		{name: "RFC6749_5.2/authorization_code_not_allowed", req: tokenReq(serviceAuth, "grant_type", "authorization_code", "code", "x"), status: 400, code: "unauthorized_client"},
		{name: "RFC6749_3.2/GET", req: func(n *negEnv) *negReq { return get(oauthd.TokenPath + "?grant_type=client_credentials") }, status: 405, code: "invalid_request", header: allowPost},
		{name: "RFC6749_3.2/parameters_in_query_ignored", req: tokenReqAt(oauthd.TokenPath+"?grant_type=client_credentials", serviceAuth, "scope", "read"),
			status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/json_body", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.TokenPath, body: `{"grant_type":"client_credentials"}`, ctype: "application/json", auth: serviceAuth}
		}, status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/text_plain_body", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.TokenPath, body: "grant_type=client_credentials", ctype: "text/plain", auth: serviceAuth}
		}, status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/no_content_type", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.TokenPath, body: "grant_type=client_credentials", ctype: "-", auth: serviceAuth}
		}, status: 400, code: "invalid_request"},
		// An empty POST without a Content-Type (Python's requests with
		// data={}) has no parameters: the answer names the missing one.
		{name: "RFC6749_3.2/empty_body_without_content_type", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.TokenPath, ctype: "-", auth: serviceAuth}
		}, status: 400, code: "invalid_request", check: descriptionHas("grant_type")},
		{name: "RFC7009_2.1/empty_body_without_content_type", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.RevokePath, ctype: "-", auth: seedAuth}
		}, status: 400, code: "invalid_request", check: descriptionHas("token")},
		{name: "RFC7662_2.1/empty_body_without_content_type", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.IntrospectPath, ctype: "-", auth: seedAuth}
		}, status: 400, code: "invalid_request", check: descriptionHas("token")},
		{name: "RFC6749_3.2/body_1MiB", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "pad", big), status: 413, code: "invalid_request"},
		{name: "RFC6749_3.2/invalid_utf8", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.TokenPath, body: "grant_type=client_credentials&scope=%ff", auth: serviceAuth}
		}, status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/nul_byte", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "scope", "read\x00"), status: 400, code: "invalid_request"},
		{name: "RFC6749_3.2/bad_percent_encoding", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.TokenPath, body: "grant_type=client_credentials&scope=%zz", auth: serviceAuth}
		}, status: 400, code: "invalid_request"},

		// Authorization codes: bound to client and redirect_uri, single
		// use, short-lived (RFC 6749 §4.1.2, §4.1.3, §10.5, RFC 9700 §4.1.3).
		{name: "RFC6749_4.1.3/code_missing", req: tokenReq(seedAuth, "grant_type", "authorization_code", "redirect_uri", redirectURI), status: 400, code: "invalid_request"},
		{name: "RFC6749_4.1.3/code_unknown", req: tokenReq(seedAuth, "grant_type", "authorization_code", "code", "nope", "redirect_uri", redirectURI), status: 400, code: "invalid_grant"},
		{name: "RFC6749_4.1.3/code_of_another_client", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, otherAuth, "grant_type", "authorization_code", "code", n.code(), "redirect_uri", redirectURI)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC6749_4.1.3/redirect_uri_mismatch", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.code(), "redirect_uri", "https://www.example.com/other")
		}, status: 400, code: "invalid_grant"},
		{name: "RFC6749_4.1.3/redirect_uri_missing", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.code())
		}, status: 400, code: "invalid_grant"},
		{name: "RFC6749_4.1.3/redirect_uri_trailing_slash", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.code(), "redirect_uri", redirectURI+"/")
		}, status: 400, code: "invalid_grant"},
		{name: "RFC8252_7.3/loopback_port_changed_at_token", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, "", "grant_type", "authorization_code", "client_id", "public_app", "code", n.publicCode(),
				"redirect_uri", "http://127.0.0.1:6666/cb", "code_verifier", verifier)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC6749_4.1.2/code_replay_revokes_first_tokens", req: func(n *negEnv) *negReq {
			code := n.code()
			first := n.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
			n.stash = first
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI)
		}, status: 400, code: "invalid_grant", check: func(t *testing.T, n *negEnv, r *response) {
			if n.active(n.stash.str("access_token")) || n.active(n.stash.str("refresh_token")) {
				t.Error("the tokens of the first redemption survived the replay")
			}
		}},
		{name: "RFC6749_4.1.3/used_code_of_another_client_revokes_nothing", req: func(n *negEnv) *negReq {
			code := n.code()
			n.stash = n.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
			return api(oauthd.TokenPath, otherAuth, "grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI)
		}, status: 400, code: "invalid_grant", check: func(t *testing.T, n *negEnv, r *response) {
			// Only the client the code was issued to replays it (§4.1.2);
			// another client holding it must not revoke that client's
			// tokens, nor learn the code was good.
			if !n.active(n.stash.str("access_token")) || !n.active(n.stash.str("refresh_token")) {
				t.Error("another client's replay of a used code revoked the tokens of its redemption")
			}
			if d := r.str("error_description"); d != "the authorization code is invalid or expired" {
				t.Errorf("error_description %q; want the unknown code's", d)
			}
		}},
		{name: "RFC6749_4.1.2/code_expired", req: func(n *negEnv) *negReq {
			code := n.code()
			n.after(5*time.Minute + time.Second)
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC6749_4.1.2/code_kept_after_a_refused_redemption", req: func(n *negEnv) *negReq {
			code := n.pkceCode(verifier)
			n.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI, "code_verifier", strings.Repeat("W", 50)))
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI, "code_verifier", verifier)
		}, status: 200},
		{name: "RFC6749_4.1.3/refresh_token_as_code", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.tokens().str("refresh_token"), "redirect_uri", redirectURI)
		}, status: 400, code: "invalid_grant"},

		// PKCE downgrade and ABNF at the token endpoint (RFC 7636 §4.1,
		// §4.5, §4.6; RFC 9700 §2.1.1, §4.8.2).
		{name: "RFC9700_2.1.1/verifier_without_challenge", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.code(), "redirect_uri", redirectURI, "code_verifier", verifier)
		}, status: 400, code: "invalid_request"},
		{name: "RFC7636_4.5/verifier_missing", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.pkceCode(verifier), "redirect_uri", redirectURI)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC7636_4.6/verifier_wrong", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.pkceCode(verifier), "redirect_uri", redirectURI, "code_verifier", strings.Repeat("W", 50))
		}, status: 400, code: "invalid_grant"},
		{name: "RFC7636_4.6/verifier_equals_challenge", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.pkceCode(verifier), "redirect_uri", redirectURI,
				"code_verifier", oauthd.S256Challenge(verifier))
		}, status: 400, code: "invalid_grant"},
		{name: "RFC7636_4.1/verifier_42_chars", req: func(n *negEnv) *negReq {
			v := strings.Repeat("s", 42)
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.pkceCode(v), "redirect_uri", redirectURI, "code_verifier", v)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC7636_4.1/verifier_129_chars", req: func(n *negEnv) *negReq {
			v := strings.Repeat("l", 129)
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.pkceCode(v), "redirect_uri", redirectURI, "code_verifier", v)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC7636_4.1/verifier_outside_unreserved", req: func(n *negEnv) *negReq {
			v := strings.Repeat("a+b/", 12)
			return api(oauthd.TokenPath, seedAuth, "grant_type", "authorization_code", "code", n.pkceCode(v), "redirect_uri", redirectURI, "code_verifier", v)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC7636_4.6/public_client_verifier_missing", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, "", "grant_type", "authorization_code", "client_id", "public_app", "code", n.publicCode(), "redirect_uri", loopbackCB)
		}, status: 400, code: "invalid_grant"},

		// Refresh tokens: rotation, replay, binding, scope (RFC 6749 §6,
		// RFC 9700 §4.14.2).
		{name: "RFC6749_6/refresh_token_missing", req: tokenReq(seedAuth, "grant_type", "refresh_token"), status: 400, code: "invalid_request"},
		{name: "RFC6749_6/refresh_token_unknown", req: tokenReq(seedAuth, "grant_type", "refresh_token", "refresh_token", "nope"), status: 400, code: "invalid_grant"},
		{name: "RFC6749_6/refresh_token_of_another_client", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, otherAuth, "grant_type", "refresh_token", "refresh_token", n.tokens().str("refresh_token"))
		}, status: 400, code: "invalid_grant"},
		{name: "RFC9700_4.14.2/refresh_token_replay_revokes_successor", req: func(n *negEnv) *negReq {
			rt := n.tokens().str("refresh_token")
			n.stash = n.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", rt)
		}, status: 400, code: "invalid_grant", check: func(t *testing.T, n *negEnv, r *response) {
			if n.active(n.stash.str("access_token")) || n.active(n.stash.str("refresh_token")) {
				t.Error("the successor tokens survived the replay of their predecessor")
			}
		}},
		{name: "RFC6749_6/scope_widening", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", n.tokens().str("refresh_token"), "scope", "email profile")
		}, status: 400, code: "invalid_scope"},
		{name: "RFC6749_6/scope_widening_after_narrowing", req: func(n *negEnv) *negReq {
			n.store.UpdateClient(n.t.Context(), &oauthd.Client{ID: clientID, SecretHash: hash(n.t, clientSecret), RedirectURIs: []string{redirectURI},
				GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email", "profile", "admin"}})
			r := n.token(seedAuth, form("grant_type", "authorization_code", "code", n.code("scope", "email profile"), "redirect_uri", redirectURI))
			narrow := n.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token"), "scope", "email"))
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", narrow.str("refresh_token"), "scope", "email profile admin")
		}, status: 400, code: "invalid_scope"},
		{name: "RFC6749_6/scope_bad_characters", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", n.tokens().str("refresh_token"), "scope", `"email"`)
		}, status: 400, code: "invalid_scope"},
		// A scope of spaces names no scope token: taken as absent (the
		// grant's scope), as an empty one, never as "no scope at all".
		{name: "RFC6749_3.3/refresh_scope_of_spaces_is_absent", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", n.tokens().str("refresh_token"), "scope", "   ")
		}, status: 200, check: func(t *testing.T, n *negEnv, r *response) {
			if got := r.str("scope"); got != "email" {
				t.Errorf("scope %q; want the grant's, %q", got, "email")
			}
		}},
		{name: "RFC6749_6/access_token_as_refresh_token", req: func(n *negEnv) *negReq {
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", n.tokens().str("access_token"))
		}, status: 400, code: "invalid_grant"},
		{name: "RFC6749_6/refresh_token_expired", req: func(n *negEnv) *negReq {
			rt := n.tokens().str("refresh_token")
			n.after(901 * time.Second)
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", rt)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC7009_2.1/refresh_token_revoked", req: func(n *negEnv) *negReq {
			rt := n.tokens().str("refresh_token")
			n.revoke(seedAuth, "token", rt)
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", rt)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC6749_4.1.2/refresh_token_after_code_replay", req: func(n *negEnv) *negReq {
			code := n.code()
			rt := n.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI)).str("refresh_token")
			n.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
			return api(oauthd.TokenPath, seedAuth, "grant_type", "refresh_token", "refresh_token", rt)
		}, status: 400, code: "invalid_grant"},
		{name: "RFC6749_4.4/client_credentials_scope_widening", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "scope", "read admin"), status: 400, code: "invalid_scope"},
		{name: "RFC6749_3.3/client_credentials_bad_scope_characters", req: tokenReq(serviceAuth, "grant_type", "client_credentials", "scope", `re\ad`), status: 400, code: "invalid_scope"},

		// The password grant, where enabled (RFC 6749 §4.3): an unknown
		// user and a wrong password are the same invalid_grant.
		{name: "RFC6749_4.3.2/password_wrong", env: envPassword, req: tokenReq(basic("pw_client", pwClientSecret), "grant_type", "password", "username", "admin", "password", "wrong"), status: 400, code: "invalid_grant",
			check: samePasswordError},
		{name: "RFC6749_4.3.2/password_unknown_user", env: envPassword, req: tokenReq(basic("pw_client", pwClientSecret), "grant_type", "password", "username", "nobody", "password", "admin"), status: 400, code: "invalid_grant",
			check: samePasswordError},
		{name: "RFC6749_4.3.2/password_missing", env: envPassword, req: tokenReq(basic("pw_client", pwClientSecret), "grant_type", "password", "username", "admin"), status: 400, code: "invalid_request"},
		{name: "RFC6749_4.3.2/password_repeated", env: envPassword, req: tokenReq(basic("pw_client", pwClientSecret), "grant_type", "password", "username", "admin", "password", "admin", "password", "x"), status: 400, code: "invalid_request"},
		{name: "RFC6749_4.3.2/password_grant_not_allowed_for_client", env: envPassword, req: tokenReq(seedAuth, "grant_type", "password", "username", "admin", "password", "admin"), status: 400, code: "unauthorized_client"},

		// Introspection (RFC 7662 §2.1, §2.2, §4).
		{name: "RFC7662_2.1/no_client_authentication", req: introReq("", "token", "x"), status: 401, code: "invalid_client"},
		{name: "RFC7662_2.1/wrong_secret", req: introReq(basic(clientID, "wrong"), "token", "x"), status: 401, code: "invalid_client"},
		{name: "RFC7662_2.1/token_missing", req: introReq(seedAuth), status: 400, code: "invalid_request"},
		{name: "RFC7662_2.1/token_repeated", req: introReq(seedAuth, "token", "a", "token", "b"), status: 400, code: "invalid_request"},
		{name: "RFC7662_2.1/token_type_hint_repeated", req: introReq(seedAuth, "token", "a", "token_type_hint", "access_token", "token_type_hint", "refresh_token"), status: 400, code: "invalid_request"},
		{name: "RFC7662_2.1/nul_in_token", req: introReq(seedAuth, "token", "a\x00"), status: 400, code: "invalid_request"},
		{name: "RFC7662_2.1/GET", req: func(n *negEnv) *negReq { return get(oauthd.IntrospectPath + "?token=x") }, status: 405, code: "invalid_request", header: allowPost},
		{name: "RFC7662_2.1/body_1MiB", req: introReq(seedAuth, "token", big), status: 413, code: "invalid_request"},
		{name: "RFC7662_4/other_clients_token", req: func(n *negEnv) *negReq {
			return api(oauthd.IntrospectPath, otherAuth, "token", n.tokens().str("access_token"))
		}, status: 200, check: inactive},
		{name: "RFC7662_4/other_clients_refresh_token", req: func(n *negEnv) *negReq {
			return api(oauthd.IntrospectPath, serviceAuth, "token", n.tokens().str("refresh_token"), "token_type_hint", "refresh_token")
		}, status: 200, check: inactive},
		{name: "RFC7662_2.2/unknown_token", req: introReq(seedAuth, "token", "nope"), status: 200, check: inactive},
		{name: "RFC7662_2.2/expired_access_token", req: func(n *negEnv) *negReq {
			at := n.tokens().str("access_token")
			n.after(301 * time.Second)
			return api(oauthd.IntrospectPath, seedAuth, "token", at)
		}, status: 200, check: inactive},
		{name: "RFC7662_2.2/rotated_refresh_token", req: func(n *negEnv) *negReq {
			rt := n.tokens().str("refresh_token")
			n.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
			return api(oauthd.IntrospectPath, seedAuth, "token", rt)
		}, status: 200, check: inactive},
		{name: "RFC7009_2.1/access_token_of_revoked_grant", req: func(n *negEnv) *negReq {
			tok := n.tokens()
			n.revoke(seedAuth, "token", tok.str("refresh_token"))
			return api(oauthd.IntrospectPath, seedAuth, "token", tok.str("access_token"))
		}, status: 200, check: inactive},

		// Revocation (RFC 7009 §2.1, §2.2, §2.2.1).
		{name: "RFC7009_2.1/no_client_authentication", req: revokeReq("", "token", "x"), status: 401, code: "invalid_client"},
		{name: "RFC7009_2.1/wrong_secret", req: revokeReq(basic(clientID, "wrong"), "token", "x"), status: 401, code: "invalid_client"},
		{name: "RFC7009_2.1/token_missing", req: revokeReq(seedAuth, "token_type_hint", "access_token"), status: 400, code: "invalid_request"},
		{name: "RFC7009_2.1/token_repeated", req: revokeReq(seedAuth, "token", "a", "token", "b"), status: 400, code: "invalid_request"},
		{name: "RFC7009_2.1/unknown_hint_ignored", req: revokeReq(seedAuth, "token", "x", "token_type_hint", "id_token"), status: 200, check: emptyBody},
		{name: "RFC7009_2.1/hint_repeated", req: revokeReq(seedAuth, "token", "x", "token_type_hint", "access_token", "token_type_hint", "refresh_token"), status: 400, code: "invalid_request"},
		{name: "RFC7009_2.1/invalid_utf8", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.RevokePath, body: "token=%ff", auth: seedAuth}
		}, status: 400, code: "invalid_request"},
		{name: "RFC7009_2.1/GET", req: func(n *negEnv) *negReq { return get(oauthd.RevokePath + "?token=x") }, status: 405, code: "invalid_request", header: allowPost},
		{name: "RFC7009_2.1/body_1MiB", req: revokeReq(seedAuth, "token", big), status: 413, code: "invalid_request"},
		{name: "RFC7009_2.2/unknown_token", req: revokeReq(seedAuth, "token", "nope"), status: 200, check: emptyBody},
		{name: "RFC7009_2.1/other_clients_access_token", req: func(n *negEnv) *negReq {
			n.stash = n.tokens()
			return api(oauthd.RevokePath, otherAuth, "token", n.stash.str("access_token"))
		}, status: 400, code: "unauthorized_client", check: func(t *testing.T, n *negEnv, r *response) {
			if !n.active(n.stash.str("access_token")) {
				t.Error("another client revoked the seed client's access token")
			}
		}},
		{name: "RFC7009_2.1/other_clients_refresh_token", req: func(n *negEnv) *negReq {
			n.stash = n.tokens()
			return api(oauthd.RevokePath, otherAuth, "token", n.stash.str("refresh_token"), "token_type_hint", "refresh_token")
		}, status: 400, code: "unauthorized_client", check: func(t *testing.T, n *negEnv, r *response) {
			if !n.active(n.stash.str("refresh_token")) || !n.active(n.stash.str("access_token")) {
				t.Error("another client revoked the seed client's grant")
			}
		}},

		// Login and consent forms: CSRF, fixation, generic failures
		// (RFC 6749 §10.12, RFC 9700 §4.4.1.8, §4.7).
		{name: "RFC6749_10.12/login_without_csrf", req: func(n *negEnv) *negReq {
			b := n.browser()
			r := n.loginPage(b, n.authz())
			return post(oauthd.LoginPath, "request", r.str("AuthReqID"), "username", "admin", "password", "admin").from(b)
		}, status: 403, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.12/login_csrf_of_another_request", req: func(n *negEnv) *negReq {
			b := n.browser()
			r1 := n.loginPage(b, n.authz())
			r2 := n.loginPage(b, n.authz())
			return post(oauthd.LoginPath, "request", r2.str("AuthReqID"), "csrf", r1.str("CSRF"), "username", "admin", "password", "admin").from(b)
		}, status: 403, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.12/login_form_of_another_browser", req: func(n *negEnv) *negReq {
			r := n.loginPage(n.browser(), n.authz())
			victim := n.browser()
			victim.get(n.authorizeURL())
			return post(oauthd.LoginPath, "request", r.str("AuthReqID"), "csrf", r.str("CSRF"), "username", "admin", "password", "admin").from(victim)
		}, status: 400, code: oauthd.PageRequestExpired},
		{name: "RFC6749_10.12/login_without_cookies", req: func(n *negEnv) *negReq {
			r := n.loginPage(n.browser(), n.authz())
			return post(oauthd.LoginPath, "request", r.str("AuthReqID"), "csrf", r.str("CSRF"), "username", "admin", "password", "admin")
		}, status: 400, code: oauthd.PageCookiesRequired},
		// A browser that blocks cookies is told so, not that its request
		// expired, on the login and consent pages alike; whether the
		// request exists is not told.
		{name: "RFC6265_cookies_blocked/login_page", req: func(n *negEnv) *negReq {
			loc := n.browser().get(n.authorizeURL()).location()
			return get(loc)
		}, status: 400, code: oauthd.PageCookiesRequired},
		{name: "RFC6265_cookies_blocked/consent_page_unknown_request", req: func(n *negEnv) *negReq {
			return get(oauthd.ConsentPath + "?request=nope")
		}, status: 400, code: oauthd.PageCookiesRequired},
		{name: "RFC6749_10.12/login_without_request_or_csrf", req: func(n *negEnv) *negReq {
			return post(oauthd.LoginPath, "username", "admin", "password", "admin").from(n.browser())
		}, status: 403, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.12/login_with_consent_csrf", req: func(n *negEnv) *negReq {
			b := n.browser()
			c := n.consentPage(b, n.authz())
			return post(oauthd.LoginPath, "request", c.str("AuthReqID"), "csrf", c.str("CSRF"), "username", "admin", "password", "admin").from(b)
		}, status: 403, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.12/login_text_plain_cross_site_form", req: func(n *negEnv) *negReq {
			b := n.browser()
			r := n.loginPage(b, n.authz())
			q := post(oauthd.LoginPath, "request", r.str("AuthReqID"), "csrf", r.str("CSRF"), "username", "admin", "password", "admin").from(b)
			q.ctype = "text/plain"
			return q
		}, status: 400, code: oauthd.PageBadRequest},
		{name: "RFC6749_3.1/login_form_username_repeated", req: func(n *negEnv) *negReq {
			b := n.browser()
			r := n.loginPage(b, n.authz())
			return post(oauthd.LoginPath, "request", r.str("AuthReqID"), "csrf", r.str("CSRF"), "username", "nobody", "username", "admin", "password", "admin").from(b)
		}, status: 400, code: oauthd.PageBadRequest},
		{name: "RFC6749_3.1/consent_form_action_repeated", req: func(n *negEnv) *negReq {
			b := n.browser()
			c := n.consentPage(b, n.authz())
			return post(oauthd.ConsentPath, "request", c.str("AuthReqID"), "csrf", c.str("CSRF"), "action", "deny", "action", "approve").from(b)
		}, status: 400, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.12/consent_without_csrf", req: func(n *negEnv) *negReq {
			b := n.browser()
			c := n.consentPage(b, n.authz())
			return post(oauthd.ConsentPath, "request", c.str("AuthReqID"), "action", "approve").from(b)
		}, status: 403, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.12/consent_with_login_csrf", req: func(n *negEnv) *negReq {
			b := n.browser()
			l := n.loginPage(b, n.authz())
			c := b.follow(n.testEnv, b.login(n.testEnv, l, "admin", "admin"))
			return post(oauthd.ConsentPath, "request", c.str("AuthReqID"), "csrf", l.str("CSRF"), "action", "approve").from(b)
		}, status: 403, code: oauthd.PageOutdated}, // refused; a token that does not fit reads as a page to load again
		{name: "RFC6749_10.12/consent_csrf_of_another_request", req: func(n *negEnv) *negReq {
			b := n.browser()
			c1 := n.consentPage(b, n.authz())
			c2 := b.follow(n.testEnv, b.get(n.authorizeURL()))
			return post(oauthd.ConsentPath, "request", c2.str("AuthReqID"), "csrf", c1.str("CSRF"), "action", "approve").from(b)
		}, status: 403, code: oauthd.PageOutdated}, // refused; a token that does not fit reads as a page to load again
		{name: "RFC6749_10.12/consent_form_of_another_browser", req: func(n *negEnv) *negReq {
			c := n.consentPage(n.browser(), n.authz())
			victim := n.browser()
			n.consentPage(victim, n.authz())
			return post(oauthd.ConsentPath, "request", c.str("AuthReqID"), "csrf", c.str("CSRF"), "action", "approve").from(victim)
		}, status: 400, code: oauthd.PageRequestExpired},
		{name: "RFC6749_10.12/consent_without_session", req: func(n *negEnv) *negReq {
			b := n.browser()
			l := n.loginPage(b, n.authz())
			return get(oauthd.ConsentPath + "?request=" + url.QueryEscape(l.str("AuthReqID"))).from(b)
		}, status: 303, loc: oauthd.LoginPath + "?"},
		{name: "RFC6749_10.12/consent_unknown_action", req: func(n *negEnv) *negReq {
			b := n.browser()
			c := n.consentPage(b, n.authz())
			return post(oauthd.ConsentPath, "request", c.str("AuthReqID"), "csrf", c.str("CSRF"), "action", "approve_all").from(b)
		}, status: 400, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.12/consent_answered_twice", req: func(n *negEnv) *negReq {
			b := n.browser()
			c := n.consentPage(b, n.authz())
			b.decide(n.testEnv, c, "approve")
			return post(oauthd.ConsentPath, "request", c.str("AuthReqID"), "csrf", c.str("CSRF"), "action", "approve").from(b)
		}, status: 400, code: oauthd.PageRequestExpired},
		{name: "RFC6749_4.1.2.1/consent_denied", req: func(n *negEnv) *negReq {
			b := n.browser()
			c := n.consentPage(b, n.authz())
			return post(oauthd.ConsentPath, "request", c.str("AuthReqID"), "csrf", c.str("CSRF"), "action", "deny").from(b)
		}, status: 303, code: "access_denied", loc: redirectURI + "?", check: stateEchoed},
		{name: "RFC9700_4.1/authorization_request_expired", req: func(n *negEnv) *negReq {
			b := n.browser()
			l := n.loginPage(b, n.authz())
			n.after(31 * time.Minute)
			return post(oauthd.LoginPath, "request", l.str("AuthReqID"), "csrf", l.str("CSRF"), "username", "admin", "password", "admin").from(b)
		}, status: 400, code: oauthd.PageRequestExpired},
		// A logout POST without the confirmation's CSRF token only asks
		// for confirmation; it signs nobody out (one from another site,
		// without cookies, is posted again by the server's relay page).
		{name: "OIDC_RPInitiatedLogout_2/logout_POST_without_csrf_only_asks", req: func(n *negEnv) *negReq {
			b := n.browser()
			n.consentPage(b, n.authz())
			u, _ := url.Parse(n.srv.URL)
			n.stashCookie = cookie(b, u, "oauthd_session")
			return post(oauthd.LogoutPath, "action", "logout").from(b)
		}, status: 200, check: func(t *testing.T, n *negEnv, r *response) {
			if r.pageKind() != "logout" || r.page["SignedOut"] != false || r.str("CSRF") == "" {
				t.Errorf("a logout POST without the form's token must only show the confirmation: %s", describe(r))
			}
			if cookieValue(r, "oauthd_session") != "" || strings.Contains(r.header.Get("Set-Cookie"), "oauthd_session=;") {
				t.Errorf("the session cookie was cleared without the confirmation's CSRF token")
			}
			home := n.do(&negReq{method: "GET", target: "/", header: map[string]string{"Cookie": "oauthd_session=" + n.stashCookie}})
			if home.status != http.StatusOK || home.pageKind() != "home" {
				t.Errorf("the session ended without the confirmation: %s", describe(home))
			}
		}},
		{name: "RFC6749_10.12/logout_wrong_csrf", req: func(n *negEnv) *negReq {
			b := n.browser()
			c := n.consentPage(b, n.authz())
			return post(oauthd.LogoutPath, "csrf", c.str("CSRF"), "action", "logout").from(b)
		}, status: 403, code: oauthd.PageBadRequest},
		{name: "OIDC_RPInitiatedLogout_2/logout_csrf_bound_to_its_fields", req: func(n *negEnv) *negReq {
			b := n.browser()
			n.consentPage(b, n.authz())
			l := get(oauthd.LogoutPath).from(b)
			page := n.do(l)
			return post(oauthd.LogoutPath, "csrf", page.str("CSRF"), "action", "logout", "client_id", "rp", "post_logout_redirect_uri", rpLogoutURI).from(b)
		}, status: 403, code: oauthd.PageBadRequest},
		{name: "OIDC_RPInitiatedLogout_3/post_logout_redirect_uri_unregistered", req: func(n *negEnv) *negReq {
			return get(oauthd.LogoutPath + "?client_id=rp&post_logout_redirect_uri=" + url.QueryEscape("https://evil.example/")).from(n.browser())
		}, status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "OIDC_RPInitiatedLogout_3/post_logout_redirect_uri_trailing_slash", req: func(n *negEnv) *negReq {
			return get(oauthd.LogoutPath + "?client_id=rp&post_logout_redirect_uri=" + url.QueryEscape(rpLogoutURI+"/")).from(n.browser())
		}, status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "OIDC_RPInitiatedLogout_3/post_logout_redirect_uri_without_client", req: func(n *negEnv) *negReq {
			return get(oauthd.LogoutPath + "?post_logout_redirect_uri=" + url.QueryEscape(rpLogoutURI)).from(n.browser())
		}, status: 400, code: oauthd.PageBadRequest}, // §2: client_id or id_token_hint MUST come with it; the URI itself may be registered
		{name: "OIDC_RPInitiatedLogout_2/post_logout_redirect_uri_of_another_client", req: func(n *negEnv) *negReq {
			return get(oauthd.LogoutPath + "?client_id=test_client&post_logout_redirect_uri=" + url.QueryEscape(rpLogoutURI)).from(n.browser())
		}, status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "OIDC_RPInitiatedLogout_2/forged_id_token_hint", req: func(n *negEnv) *negReq {
			return get(oauthd.LogoutPath + "?id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.&post_logout_redirect_uri=" + url.QueryEscape(rpLogoutURI)).from(n.browser())
		}, status: 400, code: oauthd.PageBadRequest},
		{name: "OIDC_RPInitiatedLogout_2/client_id_not_audience_of_hint", req: func(n *negEnv) *negReq {
			hint := n.rpTokens().str("id_token")
			return get(oauthd.LogoutPath + "?client_id=other&id_token_hint=" + hint).from(n.browser())
		}, status: 400, code: oauthd.PageBadRequest},
		{name: "OIDC_RPInitiatedLogout_2/client_id_repeated", req: func(n *negEnv) *negReq {
			return get(oauthd.LogoutPath + "?client_id=rp&client_id=other").from(n.browser())
		}, status: 400, code: oauthd.PageBadRequest},
		{name: "RFC9700_4.7/login_GET_unknown_request", req: func(n *negEnv) *negReq {
			b := n.browser()
			b.get(n.authorizeURL()) // the browser cookie
			return get(oauthd.LoginPath + "?request=nope").from(b)
		}, status: 400, code: oauthd.PageRequestExpired},
		{name: "RFC9700_4.7/login_DELETE", req: func(n *negEnv) *negReq { return &negReq{method: "DELETE", target: oauthd.LoginPath} }, status: 405, code: oauthd.PageMethodNotAllowed,
			header: map[string]string{"Allow": "GET, HEAD, POST"}},
		{name: "RFC9700_4.7/session_id_changes_at_login", req: func(n *negEnv) *negReq {
			b := n.browser()
			l := n.loginPage(b, n.authz())
			u, _ := url.Parse(n.srv.URL)
			b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "oauthd_session", Value: plantedSession, Path: "/"}})
			return post(oauthd.LoginPath, "request", l.str("AuthReqID"), "csrf", l.str("CSRF"), "username", "admin", "password", "admin").from(b)
		}, status: 303, loc: oauthd.ConsentPath + "?", check: func(t *testing.T, n *negEnv, r *response) {
			if v := cookieValue(r, "oauthd_session"); v == "" || v == plantedSession {
				t.Errorf("session cookie after login %q; want a new value, not the planted %q", v, plantedSession)
			}
			res := (&negReq{method: "GET", target: "/", header: map[string]string{"Cookie": "oauthd_session=" + plantedSession}})
			if h := n.do(res); h.status != http.StatusSeeOther || h.location() != oauthd.LoginPath {
				t.Errorf("the planted session id is signed in: %s", describe(h))
			}
		}},
		{name: "RFC9700_4.7/relogin_ends_the_old_session", req: func(n *negEnv) *negReq {
			b := n.browser()
			n.consentPage(b, n.authz())
			u, _ := url.Parse(n.srv.URL)
			n.stashCookie = cookie(b, u, "oauthd_session")
			l := b.follow(n.testEnv, b.get(n.authorizeURL("prompt", "login")))
			return post(oauthd.LoginPath, "request", l.str("AuthReqID"), "csrf", l.str("CSRF"), "username", "admin", "password", "admin").from(b)
		}, status: 303, loc: oauthd.ConsentPath + "?", check: func(t *testing.T, n *negEnv, r *response) {
			old := n.do(&negReq{method: "GET", target: "/", header: map[string]string{"Cookie": "oauthd_session=" + n.stashCookie}})
			if n.stashCookie == "" || old.status != http.StatusSeeOther || old.location() != oauthd.LoginPath {
				t.Errorf("the session from before the new login still works: %s", describe(old))
			}
		}},
		{name: "RFC6749_10.2/login_wrong_password", req: loginReq("admin", "wrong"), status: 303, code: "invalid_credentials", loc: oauthd.LoginPath + "?", check: sameLoginFailure},
		{name: "RFC6749_10.2/login_error_in_a_crafted_link_not_shown", req: func(n *negEnv) *negReq {
			return get(oauthd.LoginPath + "?error=invalid_credentials&username=mallory&sig=forged")
		}, status: 200, check: func(t *testing.T, n *negEnv, r *response) {
			if r.str("Error") != "" || r.str("Username") != "" {
				t.Errorf("a link made elsewhere put error %q and username %q on the login page", r.str("Error"), r.str("Username"))
			}
		}},
		{name: "RFC6749_10.2/login_unknown_user", req: loginReq("nobody", "admin"), status: 303, code: "invalid_credentials", loc: oauthd.LoginPath + "?", check: sameLoginFailure},
		{name: "RFC6749_10.2/login_empty_username", req: loginReq("", "admin"), status: 303, code: "invalid_credentials", loc: oauthd.LoginPath + "?"},
		{name: "RFC6749_10.2/login_username_case", req: loginReq("ADMIN", "admin"), status: 303, code: "invalid_credentials", loc: oauthd.LoginPath + "?"},
		{name: "RFC6749_10.2/login_nul_in_password", req: loginReq("admin", "admin\x00"), status: 400, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.2/login_body_1MiB", req: loginReq("admin", big), status: 413, code: oauthd.PageBadRequest},
		{name: "RFC6749_10.2/login_invalid_utf8", req: func(n *negEnv) *negReq {
			b := n.browser()
			l := n.loginPage(b, n.authz())
			return &negReq{method: "POST", target: oauthd.LoginPath, b: b,
				body: "request=" + url.QueryEscape(l.str("AuthReqID")) + "&csrf=" + url.QueryEscape(l.str("CSRF")) + "&username=%c3%28&password=admin"}
		}, status: 400, code: oauthd.PageBadRequest},

		// Userinfo: bearer token usage and errors (RFC 6750 §2, §3, §3.1;
		// OIDC Core §5.3.3).
		{name: "RFC6750_3.1/no_token", req: func(n *negEnv) *negReq { return get(oauthd.UserinfoPath) }, status: 401,
			header: map[string]string{"WWW-Authenticate": `Bearer realm="oauthd"`}, check: emptyBody},
		{name: "RFC6750_3.1/unknown_token", req: func(n *negEnv) *negReq { return bearer("nope") }, status: 401, code: "invalid_token"},
		{name: "RFC6750_2/two_authorization_headers", req: func(n *negEnv) *negReq {
			q := bearer(n.rpTokens().str("access_token"))
			q.also = map[string]string{"Authorization": "Bearer nope"}
			return q
		}, status: 400, code: "invalid_request"},
		{name: "RFC6750_3.1/expired_token", req: func(n *negEnv) *negReq {
			at := n.rpTokens().str("access_token")
			n.after(2 * time.Hour)
			return bearer(at)
		}, status: 401, code: "invalid_token"},
		{name: "RFC6750_3.1/refresh_token_as_bearer", req: func(n *negEnv) *negReq { return bearer(n.rpTokens().str("refresh_token")) }, status: 401, code: "invalid_token"},
		{name: "RFC6750_3.1/id_token_as_bearer", req: func(n *negEnv) *negReq { return bearer(n.rpTokens().str("id_token")) }, status: 401, code: "invalid_token"},
		{name: "RFC6750_3.1/revoked_token", req: func(n *negEnv) *negReq {
			tok := n.rpTokens()
			n.revoke(rpAuth, "token", tok.str("refresh_token"))
			return bearer(tok.str("access_token"))
		}, status: 401, code: "invalid_token"},
		{name: "RFC6750_3.1/token_without_openid_scope", req: func(n *negEnv) *negReq { return bearer(n.tokens().str("access_token")) }, status: 403, code: "insufficient_scope",
			check: func(t *testing.T, n *negEnv, r *response) {
				if !strings.Contains(r.header.Get("WWW-Authenticate"), `scope="openid"`) {
					t.Errorf("WWW-Authenticate %q without the scope needed (RFC 6750 §3)", r.header.Get("WWW-Authenticate"))
				}
			}},
		{name: "RFC6750_3.1/other_scheme", req: func(n *negEnv) *negReq {
			return &negReq{method: "GET", target: oauthd.UserinfoPath, auth: rpAuth}
		}, status: 401, header: map[string]string{"WWW-Authenticate": `Bearer realm="oauthd"`}},
		{name: "RFC6750_3.1/empty_bearer", req: func(n *negEnv) *negReq { return bearer("") }, status: 400, code: "invalid_request"},
		{name: "RFC6750_2/two_methods", req: func(n *negEnv) *negReq {
			at := n.rpTokens().str("access_token")
			q := post(oauthd.UserinfoPath, "access_token", at)
			q.header = map[string]string{"Authorization": "Bearer " + at}
			return q
		}, status: 400, code: "invalid_request"},
		{name: "RFC6750_2.2/access_token_repeated", req: func(n *negEnv) *negReq {
			at := n.rpTokens().str("access_token")
			return post(oauthd.UserinfoPath, "access_token", at, "access_token", at)
		}, status: 400, code: "invalid_request"},
		{name: "OAuth2.1_5.2/access_token_in_query_ignored", req: func(n *negEnv) *negReq {
			return get(oauthd.UserinfoPath + "?access_token=" + n.rpTokens().str("access_token"))
		}, status: 401, header: map[string]string{"WWW-Authenticate": `Bearer realm="oauthd"`}},
		{name: "RFC6750_2.2/body_1MiB", req: func(n *negEnv) *negReq { return post(oauthd.UserinfoPath, "access_token", big) }, status: 413, code: "invalid_request"},
		{name: "RFC6750_2.2/invalid_utf8_body", req: func(n *negEnv) *negReq {
			return &negReq{method: "POST", target: oauthd.UserinfoPath, body: "access_token=%ff"}
		}, status: 400, code: "invalid_request"},
		{name: "RFC6750_3.1/token_after_code_replay", req: func(n *negEnv) *negReq {
			u := n.authorize(n.browser(), n.srv.URL+n.rpAuthz(), "approve")
			code := u.Query().Get("code")
			at := n.token(rpAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", rpRedirectURI)).str("access_token")
			n.token(rpAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", rpRedirectURI))
			return bearer(at)
		}, status: 401, code: "invalid_token"},
		{name: "RFC6750_3.1/DELETE", req: func(n *negEnv) *negReq { return &negReq{method: "DELETE", target: oauthd.UserinfoPath} }, status: 405,
			code: "invalid_request", header: map[string]string{"Allow": "GET, HEAD, POST, OPTIONS", "Access-Control-Allow-Origin": "*", "Content-Type": "application/json;charset=UTF-8"}},

		// id_token_hint at the authorization endpoint (OIDC Core §3.1.2.1).
		{name: "OIDC_Core_3.1.2.1/forged_id_token_hint", req: func(n *negEnv) *negReq {
			return get(n.rpAuthz("id_token_hint", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4Iiwic3ViIjoieCJ9."))
		}, status: 303, code: "invalid_request", loc: rpRedirectURI + "?", check: stateEchoed},
		{name: "OIDC_Core_3.1.2.1/id_token_hint_of_another_client", req: func(n *negEnv) *negReq {
			return get(n.authz("id_token_hint", n.rpTokens().str("id_token")))
		}, status: 303, code: "invalid_request", loc: redirectURI + "?", check: stateEchoed},
		{name: "OIDC_Core_3.1.2.1/id_token_hint_tampered", req: func(n *negEnv) *negReq {
			hint := n.rpTokens().str("id_token")
			parts := strings.Split(hint, ".")
			parts[1] = strings.TrimRight(base64URL(`{"iss":"`+n.issuer+`","sub":"someone-else","aud":"rp","exp":4000000000,"iat":1}`), "=")
			return get(n.rpAuthz("id_token_hint", strings.Join(parts, ".")))
		}, status: 303, code: "invalid_request", loc: rpRedirectURI + "?"},

		// Metadata and JWKS: the issuer is configured, never taken from
		// the request (RFC 8414 §3, §3.3; OIDC Discovery §4.3).
		{name: "RFC8414_3.3/host_header_does_not_change_issuer", req: func(n *negEnv) *negReq {
			q := get(oauthd.OAuthMetadataPath)
			q.host = "evil.example"
			return q
		}, status: 200, check: metadataIssuer},
		{name: "RFC8414_3.3/x_forwarded_headers_do_not_change_issuer", req: func(n *negEnv) *negReq {
			q := get(oauthd.OAuthMetadataPath)
			q.header = map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443", "Forwarded": "host=evil.example;proto=https"}
			return q
		}, status: 200, check: metadataIssuer},
		{name: "OIDC_Discovery_4.3/host_header_does_not_change_issuer", req: func(n *negEnv) *negReq {
			q := get(oauthd.OIDCDiscoveryPath)
			q.host = "evil.example:8443"
			q.header = map[string]string{"X-Forwarded-Host": "evil.example"}
			return q
		}, status: 200, check: metadataIssuer},
		{name: "RFC8414_3/metadata_POST", req: func(n *negEnv) *negReq { return post(oauthd.OAuthMetadataPath) }, status: 405, code: "invalid_request",
			header: map[string]string{"Allow": "GET, HEAD", "Content-Type": "application/json;charset=UTF-8"}},
		{name: "RFC7517_5/jwks_POST", req: func(n *negEnv) *negReq { return post(oauthd.JWKSPath) }, status: 405, code: "invalid_request",
			header: map[string]string{"Allow": "GET, HEAD", "Content-Type": "application/json;charset=UTF-8"}},
		{name: "RFC8414_3/metadata_path_suffix", req: func(n *negEnv) *negReq { return get(oauthd.OAuthMetadataPath + "/evil") }, status: 404, code: oauthd.PageNotFound},
		{name: "RFC7517_5/jwks_has_no_private_members", req: func(n *negEnv) *negReq {
			n.rpTokens()
			q := get(oauthd.JWKSPath)
			q.host = "evil.example"
			return q
		}, status: 200, check: func(t *testing.T, n *negEnv, r *response) {
			keys, _ := r.page["keys"].([]any)
			if len(keys) == 0 {
				t.Fatalf("no keys: %s", r.body)
			}
			for _, k := range keys {
				m, _ := k.(map[string]any)
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
					if _, ok := m[private]; ok {
						t.Errorf("the JWKS publishes the private member %q", private)
					}
				}
			}
		}},

		// Header spoofing never changes the issuer (RFC 9207 §2.4,
		// RFC 8414 §3): iss is configured, never read from the request.
		{name: "RFC9207_2.4/host_header", req: func(n *negEnv) *negReq {
			q := get(n.authz("response_type", "foo"))
			q.host = "evil.example"
			return q
		}, status: 303, code: "unsupported_response_type", loc: redirectURI + "?", check: issUnchanged},
		{name: "RFC9207_2.4/x_forwarded_host_and_proto", req: func(n *negEnv) *negReq {
			q := get(n.authz("response_type", "foo"))
			q.header = map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}
			return q
		}, status: 303, code: "unsupported_response_type", loc: redirectURI + "?", check: issUnchanged},
		{name: "RFC9207_2.4/forwarded_header", req: func(n *negEnv) *negReq {
			q := get(n.authz("response_type", "foo"))
			q.header = map[string]string{"Forwarded": "host=evil.example;proto=https"}
			return q
		}, status: 303, code: "unsupported_response_type", loc: redirectURI + "?", check: issUnchanged},
		{name: "RFC9207_2.4/x_original_url", req: func(n *negEnv) *negReq {
			q := get(n.authz("response_type", "foo"))
			q.header = map[string]string{"X-Original-URL": "/evil", "X-Rewrite-URL": "/evil", "X-Forwarded-Prefix": "/evil"}
			return q
		}, status: 303, code: "unsupported_response_type", loc: redirectURI + "?", check: issUnchanged},
		{name: "RFC9207_2.4/iss_on_success_with_spoofed_host", req: func(n *negEnv) *negReq {
			b := n.browser()
			c := n.consentPage(b, n.authz())
			q := post(oauthd.ConsentPath, "request", c.str("AuthReqID"), "csrf", c.str("CSRF"), "action", "approve").from(b)
			q.host = "evil.example"
			q.header = map[string]string{"X-Forwarded-Host": "evil.example"}
			return q
		}, status: 303, loc: redirectURI + "?", check: issUnchanged},
		{name: "RFC7662_2.2/introspection_iss_with_spoofed_host", req: func(n *negEnv) *negReq {
			q := api(oauthd.IntrospectPath, seedAuth, "token", n.tokens().str("access_token"))
			q.host = "evil.example"
			q.header = map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}
			return q
		}, status: 200, check: func(t *testing.T, n *negEnv, r *response) {
			if r.page["active"] != true || r.str("iss") != n.issuer {
				t.Errorf("introspection %s; want active with iss %s", r.body, n.issuer)
			}
		}},

		// Every echoed parameter is escaped in the real pages (XSS).
		{name: "RFC6749_4.1.2.1/xss_state_by_form_post", env: envUI, req: authzPage("response_mode", "form_post", "response_type", "foo", "state", xssScript+xssAttr), status: 200, code: "unsupported_response_type",
			check: func(t *testing.T, n *negEnv, r *response) {
				f := uiForm(t, r)
				if f.Action != redirectURI || f.Input("state") == nil || f.Input("state").Value != xssScript+xssAttr {
					t.Errorf("form_post form %+v; want the state back, escaped, to %s", f, redirectURI)
				}
			}},
		{name: "RFC6749_4.1.2.1/xss_state_in_query", env: envUI, req: authzPage("response_type", "foo", "state", xssScript+xssAttr), status: 303, code: "unsupported_response_type", loc: redirectURI + "?"},
		{name: "OIDC_Core_3.1.2.1/xss_login_hint", env: envUI, req: func(n *negEnv) *negReq {
			b := n.browser()
			r := b.get(n.authorizeURL("login_hint", xssAttr+xssScript))
			return get(r.location()).from(b)
		}, status: 200, check: func(t *testing.T, n *negEnv, r *response) {
			if in := uiForm(t, r).Input("username"); in == nil || in.Value != xssAttr+xssScript {
				t.Errorf("login_hint not kept (escaped) in the username field: %+v", in)
			}
		}},
		{name: "RFC6749_10.2/xss_username_after_failed_login", env: envUI, req: func(n *negEnv) *negReq {
			b := n.browser()
			r := b.get(n.authorizeURL())
			r = b.get(n.srv.URL + r.location())
			f := uiForm(n.t, r)
			r = b.post(n.srv.URL+f.Action, f.Values(nil, map[string]string{"username": xssAttr + xssScript, "password": "x"}))
			return get(r.location()).from(b)
		}, status: 200},
		{name: "RFC6749_10.2/xss_username_in_query", env: envUI, req: func(n *negEnv) *negReq {
			return get(oauthd.LoginPath + "?error=invalid_credentials&username=" + url.QueryEscape(xssAttr+xssScript))
		}, status: 200},
		{name: "RFC6749_4.1.2.1/xss_client_id", env: envUI, req: authzPage("client_id", xssScript+xssAttr), status: 400, code: oauthd.PageUnknownClient},
		{name: "RFC6749_4.1.2.1/xss_redirect_uri", env: envUI, req: authzPage("redirect_uri", "https://x.example/"+xssScript+xssAttr), status: 400, code: oauthd.PageInvalidRedirectURI},
		{name: "RFC6749_3.3/xss_scope", env: envUI, req: authzPage("response_mode", "form_post", "scope", xssScript+xssAttr), status: 200, code: "invalid_scope"},
		{name: "RFC6749_4.1.2.1/xss_response_type_in_description", env: envUI, req: authzPage("response_mode", "form_post", "response_type", xssAttr+xssScript), status: 200, code: "unsupported_response_type"},
		{name: "RFC7636_4.3/xss_code_challenge_method_in_description", env: envUI, req: authzPage("response_mode", "form_post", "code_challenge", strings.Repeat("a", 43), "code_challenge_method", xssAttr+xssScript), status: 200, code: "invalid_request"},
		{name: "RFC6749_3.1/xss_parameter_name", env: envUI, req: func(n *negEnv) *negReq {
			return get(raw(n.authz("client_id", "\xff"), url.QueryEscape(xssScript+xssAttr)+"=%ff"))
		}, status: 400, code: oauthd.PageUnknownClient},
		{name: "OIDC_Core_3.1.2.1/xss_ui_locales", env: envUI, req: func(n *negEnv) *negReq {
			b := n.browser()
			r := b.get(n.authorizeURL("ui_locales", xssAttr+" "+xssScript))
			return get(r.location()).from(b)
		}, status: 200},
		{name: "RFC6749_10.12/xss_request_id", env: envUI, req: func(n *negEnv) *negReq {
			b := n.browser()
			b.get(n.authorizeURL()) // the browser cookie
			return get(oauthd.ConsentPath + "?request=" + url.QueryEscape(xssScript+xssAttr)).from(b)
		}, status: 400, code: oauthd.PageRequestExpired},
		{name: "OIDC_RPInitiatedLogout_2/xss_state_on_confirmation", env: envUI, req: func(n *negEnv) *negReq {
			b := n.browser()
			n.uiSignIn(b)
			return get(oauthd.LogoutPath + "?client_id=rp&post_logout_redirect_uri=" + url.QueryEscape(rpLogoutURI) + "&state=" + url.QueryEscape(xssScript+xssAttr)).from(b)
		}, status: 200, check: func(t *testing.T, n *negEnv, r *response) {
			if in := uiForm(t, r).Input("state"); in == nil || in.Value != xssScript+xssAttr {
				t.Errorf("state not carried (escaped) by the confirmation form: %+v", in)
			}
		}},
		{name: "OIDC_RPInitiatedLogout_3/xss_state_in_redirect", env: envUI, req: func(n *negEnv) *negReq {
			return get(oauthd.LogoutPath + "?client_id=rp&post_logout_redirect_uri=" + url.QueryEscape(rpLogoutURI) + "&state=" + url.QueryEscape(xssScript+xssAttr))
		}, status: 303, loc: rpLogoutURI + "?state="},
		{name: "RFC6749_5.2/xss_grant_type_in_json", env: envUI, req: tokenReq(serviceAuth, "grant_type", xssScript+xssAttr), status: 400, code: "unsupported_grant_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNegEnv(t, tc.env)
			q := tc.req(n)
			r := n.do(q)
			if r.status != tc.status {
				t.Errorf("status %d; want %d (%s)", r.status, tc.status, describe(r))
			}
			if got := errorCode(t, r); got != tc.code {
				t.Errorf("error %q; want %q (%s)", got, tc.code, describe(r))
			}
			wantLocation(t, r, tc.loc)
			for k, v := range tc.header {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s: %q; want %q", k, got, v)
				}
			}
			n.checkInvariants(t, q, r)
			if tc.check != nil {
				tc.check(t, n, r)
			}
		})
	}
	if len(cases) < 100 {
		t.Errorf("the battery has %d cases; want at least 100", len(cases))
	}
}

// metadataIssuer checks that the metadata names the configured issuer and
// puts every endpoint under it.
func metadataIssuer(t *testing.T, n *negEnv, r *response) {
	if r.str("issuer") != n.issuer {
		t.Errorf("issuer %q; want %q", r.str("issuer"), n.issuer)
	}
	for k, v := range r.page {
		if s, ok := v.(string); ok && (strings.HasSuffix(k, "_endpoint") || k == "jwks_uri") && !strings.HasPrefix(s, n.issuer+"/") {
			t.Errorf("%s = %q is not under the issuer", k, s)
		}
	}
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

const plantedSession = "planted-by-the-attacker-AAAAAAAAAAAAAAAAAAAAA"

// authzPage is a GET of the seed authorization request with changes.
func authzPage(kv ...string) func(n *negEnv) *negReq {
	return func(n *negEnv) *negReq { return get(n.authz(kv...)) }
}

// publicPage is a GET of the public client's request with changes.
func publicPage(kv ...string) func(n *negEnv) *negReq {
	return func(n *negEnv) *negReq { return get(n.publicAuthz(kv...)) }
}

func tokenReq(auth string, kv ...string) func(n *negEnv) *negReq {
	return func(n *negEnv) *negReq { return api(oauthd.TokenPath, auth, kv...) }
}

func tokenReqAt(target, auth string, kv ...string) func(n *negEnv) *negReq {
	return func(n *negEnv) *negReq { return api(target, auth, kv...) }
}

func introReq(auth string, kv ...string) func(n *negEnv) *negReq {
	return func(n *negEnv) *negReq { return api(oauthd.IntrospectPath, auth, kv...) }
}

func revokeReq(auth string, kv ...string) func(n *negEnv) *negReq {
	return func(n *negEnv) *negReq { return api(oauthd.RevokePath, auth, kv...) }
}

// loginReq posts the login form of a fresh request with the credentials.
func loginReq(username, password string) func(n *negEnv) *negReq {
	return func(n *negEnv) *negReq {
		b := n.browser()
		l := n.loginPage(b, n.authz())
		return post(oauthd.LoginPath, "request", l.str("AuthReqID"), "csrf", l.str("CSRF"), "username", username, "password", password).from(b)
	}
}

// sameLoginFailure checks that a wrong password and an unknown user are
// answered alike: the same redirect but for the MAC (sig) that vouches for
// the name typed, which is kept in a cookie rather than in the URL (the
// browser's history and proxies' logs).
func sameLoginFailure(t *testing.T, n *negEnv, r *response) {
	u, _ := url.Parse(r.location())
	q := u.Query()
	q.Del("request")
	if q.Get("sig") == "" {
		t.Errorf("login failure redirect %q has no sig", r.location())
	}
	q.Del("sig")
	if q.Encode() != "error=invalid_credentials" || u.Path != oauthd.LoginPath {
		t.Errorf("login failure redirect %q; want only request, error=invalid_credentials and sig (no username)", r.location())
	}
	if !strings.Contains(r.header.Get("Set-Cookie"), "oauthd_login_name=") {
		t.Errorf("Set-Cookie %q; want the name typed kept in oauthd_login_name", r.header.Get("Set-Cookie"))
	}
}

// samePasswordError checks that the password grant's failure says nothing
// about which of the username and password was wrong.
func samePasswordError(t *testing.T, n *negEnv, r *response) {
	other := n.token(basic("pw_client", pwClientSecret), form("grant_type", "password", "username", "nobody-else", "password", "x"))
	if r.body != other.body || r.status != other.status {
		t.Errorf("password grant failure %d %s differs from an unknown user's %d %s", r.status, r.body, other.status, other.body)
	}
}

// descriptionHas checks that the JSON error's description mentions want.
func descriptionHas(want string) func(t *testing.T, n *negEnv, r *response) {
	return func(t *testing.T, n *negEnv, r *response) {
		t.Helper()
		if d := r.str("error_description"); !strings.Contains(d, want) {
			t.Errorf("error_description %q; want it to mention %q", d, want)
		}
	}
}
