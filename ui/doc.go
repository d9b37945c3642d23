// Package ui renders oauthd's login, consent, error, form_post, home and
// logout pages. It implements oauthd.Pages with html/template.
//
// The templates and static files are embedded in the binary and parsed once,
// by New. Nothing on the pages loads a third-party resource, and no page has
// inline script or inline style, so they work under the strict
// Content-Security-Policy the Provider sends:
//
//	default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:;
//	frame-ancestors 'none'; base-uri 'none'
//
// (no form-action directive: the consent form's answer redirects to the
// client's redirect URI, which may use any scheme).
//
// # Theming
//
// Options.PrimaryColor and Options.AccentColor change the colours without
// any file: New turns them into a small generated stylesheet served as
// /static/theme.css and linked from every page after oauthd.css.
//
// Options.ThemeDir points to a directory read once by New (so a change needs
// a restart, not a rebuild). Its templates/*.html files replace the embedded
// templates of the same name:
//
//	layout.html    the document around every page (head, stylesheets, card)
//	login.html     the sign-in form
//	consent.html   the approve/deny form
//	error.html     the error page
//	formpost.html  the response_mode=form_post page
//	home.html      the signed-in landing page
//	logout.html    the sign-out confirmation and the signed-out page
//
// A page template defines "content" and may define "head" (extra elements
// of <head>); layout.html defines "layout", which New executes. Every
// template receives a *View. An unknown template name in ThemeDir is an
// error, so a misspelt file does not go unnoticed.
//
// The files under ThemeDir/static/ (subdirectories included, hidden files
// skipped) replace the embedded static files of the same name (oauthd.css,
// formpost.js) or are added next to them, for example a logo. A theme may
// ship static/theme.css itself when it sets no colour option.
//
// # Languages
//
// The pages speak English and French. The language is the first of
// Page.Locales that is supported (matching on the base language, so fr-CA
// gives French), else the best one of the request's Accept-Language header,
// else Options.DefaultLocale, else English. Messages are looked up by ID
// with View.T; a message missing from a language falls back to English.
package ui
