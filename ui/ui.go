package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/oauthd/oauthd"
)

//go:embed templates/*.html
var embeddedTemplates embed.FS

// pageNames are the templates that render a page; each is parsed together
// with layout.html.
var pageNames = []string{"login", "consent", "error", "formpost", "home", "logout"}

const layoutFile = "layout.html"

// Options configures New. The zero value gives the embedded English and
// French pages with the default colours.
type Options struct {
	// ProductName is shown on every page and in the title; "oauthd" when empty.
	ProductName string
	// ThemeDir is an optional directory whose templates/*.html replace the
	// embedded templates of the same name and whose static/ files replace or
	// add to the embedded static files. It is read once, by New.
	ThemeDir string
	// PrimaryColor is the background of the main buttons, as #rgb, #rrggbb
	// or a CSS colour name. The button text is black or white, whichever
	// contrasts more. In dark mode a colour that contrasts less than 3:1
	// with the dark card (WCAG 1.4.11) is replaced by its lightest-needed
	// tint that does.
	PrimaryColor string
	// AccentColor is the colour of links and of the keyboard focus outline,
	// in the same forms as PrimaryColor. It must contrast at least 4.5:1
	// with the white card; in dark mode, where it must contrast 4.5:1 with
	// the dark card, a colour that does not is replaced by its
	// lightest-needed tint that does.
	AccentColor string
	// ScopeDescriptions describe scopes on the consent page, by scope name.
	// They replace the built-in descriptions (openid, profile, email,
	// address, phone, offline_access) in every language. A name followed
	// by "#" and a language tag of the pages ("calendar.read#fr") is the
	// description in that language, shown on its pages instead of the
	// one without a tag.
	ScopeDescriptions map[string]string
	// DefaultLocale is the language used when neither the page's locales nor
	// the Accept-Language header name a supported one; "en" when empty.
	DefaultLocale string
	// Logger receives the errors a page cannot show, such as a theme
	// template failing at run time; slog.Default() when nil.
	Logger *slog.Logger
}

// Pages renders the pages of oauthd. It is safe for concurrent use.
type Pages struct {
	product       string
	defaultLocale string
	scopes        map[string]string
	templates     map[string]*template.Template
	themeCSS      bool
	static        http.Handler
	log           *slog.Logger
}

var _ oauthd.Pages = (*Pages)(nil)

// New parses the templates, reads ThemeDir and checks that every page
// renders in every language. It reports a bad option naming its field.
func New(opts Options) (*Pages, error) {
	p := &Pages{
		product:       opts.ProductName,
		defaultLocale: "en",
		scopes:        maps.Clone(opts.ScopeDescriptions),
		log:           opts.Logger,
	}
	if p.product == "" {
		p.product = "oauthd"
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if opts.DefaultLocale != "" {
		l, ok := matchLocale(opts.DefaultLocale)
		if !ok {
			return nil, fmt.Errorf("ui: DefaultLocale: %q is not supported (supported: %s)", opts.DefaultLocale, strings.Join(Locales(), ", "))
		}
		p.defaultLocale = l
	}
	theme, err := newTheme(opts.PrimaryColor, opts.AccentColor)
	if err != nil {
		return nil, err
	}
	sources, err := templateSources(opts.ThemeDir)
	if err != nil {
		return nil, err
	}
	if p.templates, err = parseTemplates(sources); err != nil {
		return nil, err
	}
	files, err := staticFiles(opts.ThemeDir)
	if err != nil {
		return nil, err
	}
	if theme != nil {
		if _, ok := files[themeFile]; ok {
			return nil, errors.New("ui: ThemeDir: static/" + themeFile + " and PrimaryColor/AccentColor both set the theme; use one")
		}
		files[themeFile] = newStaticFile(themeFile, theme)
	}
	_, p.themeCSS = files[themeFile]
	p.static = &staticHandler{files: files}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// templateSources returns the text of the layout and of every page
// template, each from ThemeDir/templates when it has the file.
func templateSources(themeDir string) (map[string]string, error) {
	src := make(map[string]string, len(pageNames)+1)
	for _, name := range append([]string{layoutFile}, htmlNames()...) {
		b, err := embeddedTemplates.ReadFile("templates/" + name)
		if err != nil {
			return nil, fmt.Errorf("ui: embedded template %s: %w", name, err)
		}
		src[name] = string(b)
	}
	if themeDir == "" {
		return src, nil
	}
	if fi, err := os.Stat(themeDir); err != nil {
		return nil, fmt.Errorf("ui: ThemeDir: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("ui: ThemeDir: %s is not a directory", themeDir)
	}
	dir := filepath.Join(themeDir, "templates")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return src, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ui: ThemeDir: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || path.Ext(name) != ".html" {
			continue
		}
		if _, ok := src[name]; !ok {
			return nil, fmt.Errorf("ui: ThemeDir: templates/%s overrides no template (want one of %s, %s)", name, layoutFile, strings.Join(htmlNames(), ", "))
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("ui: ThemeDir: %w", err)
		}
		src[name] = string(b)
	}
	return src, nil
}

func htmlNames() []string {
	names := make([]string, len(pageNames))
	for i, n := range pageNames {
		names[i] = n + ".html"
	}
	return names
}

// parseTemplates makes one template set per page: the layout plus the page.
func parseTemplates(src map[string]string) (map[string]*template.Template, error) {
	layout, err := template.New(layoutFile).Parse(src[layoutFile])
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	if layout.Lookup("layout") == nil {
		return nil, fmt.Errorf("ui: %s does not define \"layout\"", layoutFile)
	}
	sets := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("ui: %w", err)
		}
		if _, err := t.New(name + ".html").Parse(src[name+".html"]); err != nil {
			return nil, fmt.Errorf("ui: %w", err)
		}
		sets[name] = t
	}
	return sets, nil
}

// check renders every page in every language with sample data, so a theme
// template that refers to a missing field fails at start-up rather than in
// front of a person.
func (p *Pages) check() error {
	client := &oauthd.Client{ID: "client", Name: "Client", LogoURI: "https://client.example/logo.png", ClientURI: "https://client.example/"}
	user := &oauthd.User{ID: "1", Username: "user"}
	hidden := []oauthd.Param{{Name: "state", Value: "s"}}
	for _, lang := range Locales() {
		page := oauthd.Page{Locales: []string{lang}, RequestID: "check"}
		calls := []struct {
			name   string
			render func(http.ResponseWriter, *http.Request)
		}{
			{"login", func(w http.ResponseWriter, r *http.Request) {
				p.Login(w, r, &oauthd.LoginPage{Page: page, Action: "/login", Client: client, Error: "invalid_credentials", Username: "user"})
			}},
			{"consent", func(w http.ResponseWriter, r *http.Request) {
				p.Consent(w, r, &oauthd.ConsentPage{Page: page, Action: "/consent", Client: client, User: user, Scopes: []string{"openid", "custom"}, Remember: true, SwitchUserURL: "/switch"})
			}},
			{"error", func(w http.ResponseWriter, r *http.Request) {
				p.Error(w, r, &oauthd.ErrorPage{Page: page, Code: oauthd.PageRequestExpired, Description: "d"})
			}},
			{"formpost", func(w http.ResponseWriter, r *http.Request) {
				p.FormPost(w, r, &oauthd.FormPostPage{Page: page, Action: "https://client.example/cb", Params: hidden})
			}},
			{"home", func(w http.ResponseWriter, r *http.Request) {
				p.Home(w, r, &oauthd.HomePage{Page: page, User: user, LogoutAction: "/logout"})
			}},
			{"logout", func(w http.ResponseWriter, r *http.Request) {
				p.Logout(w, r, &oauthd.LogoutPage{Page: page, Action: "/logout", Client: client, Hidden: hidden, User: user})
			}},
			{"logout (signed out)", func(w http.ResponseWriter, r *http.Request) {
				p.Logout(w, r, &oauthd.LogoutPage{Page: page, SignedOut: true})
			}},
		}
		for _, c := range calls {
			rec := &checkWriter{header: http.Header{}}
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			c.render(rec, r)
			if rec.err != nil {
				return fmt.Errorf("ui: the %s page does not render in %q: %w", c.name, lang, rec.err)
			}
		}
	}
	return nil
}

// checkWriter is the http.ResponseWriter of check; render reports its
// template errors to it instead of answering 500.
type checkWriter struct {
	header http.Header
	err    error
}

func (c *checkWriter) Header() http.Header         { return c.header }
func (c *checkWriter) Write(b []byte) (int, error) { return len(b), nil }
func (c *checkWriter) WriteHeader(int)             {}

// Locales returns the languages the pages are written in, as BCP 47 base
// language tags ("en", "fr"), sorted. A Provider can publish them as the
// ui_locales_supported discovery metadata (OpenID Connect Discovery §3).
func Locales() []string {
	l := make([]string, 0, len(catalog))
	for k := range catalog {
		l = append(l, k)
	}
	slices.Sort(l)
	return l
}

// Static returns the handler of the pages' CSS, scripts and images. It
// expects the full request path, /static/oauthd.css for example, as when
// the Provider mounts it at oauthd.StaticPath without stripping the prefix;
// a path outside /static/ is not found.
func (p *Pages) Static() http.Handler { return p.static }

// View is the data every template receives. Page templates reach the page
// data of the Provider through Data and the values New prepared for them
// through the other fields; T translates a message ID.
type View struct {
	// Lang is the language of the page, a BCP 47 tag such as "en" or "fr".
	Lang string
	// ProductName is Options.ProductName.
	ProductName string
	// Title is the translated title of the page, for <title> and <h1>.
	Title string
	// ThemeCSS is true when /static/theme.css exists and must be linked.
	ThemeCSS bool
	// Data is the page data: *oauthd.LoginPage, *oauthd.ConsentPage,
	// *oauthd.ErrorPage, *oauthd.FormPostPage, *oauthd.HomePage or
	// *oauthd.LogoutPage.
	Data any
	// RequestID identifies the HTTP request in the server's logs.
	RequestID string
	// ClientName is the client's name, else its ID; empty without a client.
	ClientName string
	// ClientLogo and ClientURL are the client's LogoURI and ClientURI when
	// they are http or https URLs, else empty; ClientHost is ClientURL's host.
	ClientLogo, ClientURL, ClientHost string
	// Username is the signed-in person's username, else their ID.
	Username string
	// Scopes are the requested scopes with their descriptions (consent).
	Scopes []Scope
	// Message is the translated error message (login and error pages).
	Message string
	// FormAction is the form_post target, validated by the Provider.
	FormAction template.URL

	msgs map[string]string
}

// Scope is a requested scope and its description in the page's language;
// Description is empty for a scope nobody described.
type Scope struct {
	Name        string
	Description string
}

// T returns the message with the ID in the page's language, formatted
// with args as by fmt.Sprintf. A message missing from the language falls
// back to English, and an unknown ID is returned as it is.
func (v *View) T(id string, args ...any) string {
	msg, ok := v.msgs[id]
	if !ok {
		msg, ok = catalog[fallbackLocale][id]
	}
	if !ok {
		return id
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// TName is T with a name as its one argument, in the form of the message
// that a name beginning with a vowel takes where the language has one
// (ID + ".vowel": French elides "que admin" to "qu’admin").
// The name is isolated (see Iso): TName is for names others chose (a
// username); the operator's own (the product name) goes through tname.
func (v *View) TName(id, name string) string { return v.tname(id, name, true) }

// tname is TName, with the name isolated or not.
func (v *View) tname(id, name string, isolate bool) string {
	arg := name
	if isolate {
		arg = v.Iso(name)
	}
	if r, _ := utf8.DecodeRuneInString(name); strings.ContainsRune("aeiouyAEIOUYàâäéèêëîïôöùûüÀÂÄÉÈÊËÎÏÔÖÙÛÜ", r) {
		if msg, ok := v.msgs[id+".vowel"]; ok {
			return fmt.Sprintf(msg, arg)
		}
	}
	return v.T(id, arg)
}

// Iso isolates a name set by someone else (a client's name, a username)
// for a sentence of the page: between U+2068 FIRST STRONG ISOLATE and
// U+2069 POP DIRECTIONAL ISOLATE, the plain-text <bdi> (Unicode bidi
// algorithm, UAX #9 §2.7). A right-to-left name then reads as written,
// and direction overrides in it (U+202E, which a client registered before
// Client.Validate refused them may have) end with it instead of reversing
// the page's own words around it.
func (v *View) Iso(name string) string {
	if name == "" {
		return ""
	}
	return "\u2068" + name + "\u2069"
}

// has reports whether the message ID exists.
func has(id string) bool {
	_, ok := catalog[fallbackLocale][id]
	return ok
}

func (p *Pages) view(r *http.Request, page *oauthd.Page, data any) *View {
	var accept string
	if r != nil {
		accept = r.Header.Get("Accept-Language")
	}
	lang := p.chooseLocale(page.Locales, accept)
	return &View{
		Lang:        lang,
		ProductName: p.product,
		ThemeCSS:    p.themeCSS,
		Data:        data,
		RequestID:   page.RequestID,
		msgs:        catalog[lang],
	}
}

// setClient fills the client fields of v. Logo and link are kept only when
// they are absolute http(s) URLs, so a javascript: or data: URI registered
// by a client never reaches the page.
func (v *View) setClient(c *oauthd.Client) {
	if c == nil {
		return
	}
	v.ClientName = c.Name
	if v.ClientName == "" {
		v.ClientName = c.ID
	}
	if u := httpURL(c.LogoURI); u != nil && u.Scheme == "https" {
		// Only https: the pages' Content-Security-Policy loads images
		// from https alone, and an http one would be a broken image.
		v.ClientLogo = c.LogoURI
	}
	if u := httpURL(c.ClientURI); u != nil {
		if host, ok := displayHost(u); ok {
			v.ClientURL, v.ClientHost = c.ClientURI, host
		}
	}
}

// displayHost is the host of a client's link as the page shows it: an
// internationalized name in its ASCII (punycode) form, as browsers show a
// host that mixes scripts, so that "gооgle.com" with Cyrillic o's is not
// taken for google.com. A host that has no ASCII form is not shown (nor is
// the link).
func displayHost(u *url.URL) (string, bool) {
	h := u.Hostname()
	if !isASCII(h) {
		a, err := idna.Lookup.ToASCII(h)
		if err != nil || !isASCII(a) {
			return "", false
		}
		h = a
	}
	if p := u.Port(); p != "" {
		h = net.JoinHostPort(h, p)
	} else if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (v *View) setUser(u *oauthd.User) {
	if u == nil {
		return
	}
	v.Username = u.Username
	if v.Username == "" {
		v.Username = u.ID
	}
}

// httpURL parses s and returns it if it is an absolute http or https URL
// with a host.
func httpURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil
	}
	return u
}

// contextOf returns the request's context, or the background context for a
// nil request.
func contextOf(r *http.Request) context.Context {
	if r == nil {
		return context.Background()
	}
	return r.Context()
}

// statusOr returns s, or def when s is not a valid HTTP status.
func statusOr(s, def int) int {
	if s < 100 || s > 999 {
		return def
	}
	return s
}

// render executes the page's template into a buffer and writes it with the
// status, so a failing template never sends half a page.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, name string, status int, v *View) {
	var buf bytes.Buffer
	if err := p.templates[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		if c, ok := w.(*checkWriter); ok {
			c.err = err
			return
		}
		p.log.ErrorContext(contextOf(r), "ui: page does not render", "page", name, "request_id", v.RequestID, "err", err)
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "Internal server error. Request ID: "+v.RequestID+"\n")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", v.Lang)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
