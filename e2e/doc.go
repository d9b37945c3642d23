// Package e2e holds oauthd's end-to-end tests: the real server, started by
// internal/app exactly as `oauthd serve --demo` runs it, driven over real
// HTTP and by a real browser (Debian's Chromium through chromedp).
//
// The browser tests skip when Chromium is not installed, unless the
// environment sets OAUTHD_REQUIRE_BROWSER=1 (as .ci/run does), which makes
// a missing browser a failure. They look for /usr/bin/chromium, then
// chromium or chromium-browser in PATH; OAUTHD_CHROMIUM names another
// binary. With OAUTHD_SCREENSHOTS=1 they also write the
// screenshots of docs/screenshots/:
//
//	OAUTHD_SCREENSHOTS=1 go test ./e2e/ -run Screenshots
package e2e
