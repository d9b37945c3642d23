package ui

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseAcceptLanguage(t *testing.T) {
	tests := []struct {
		header string
		want   []string
	}{
		{"", nil},
		{"fr", []string{"fr"}},
		{"fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", []string{"fr-ch", "fr", "en", "de"}},
		{"en;q=0.1, fr", []string{"fr", "en"}},
		{"de;q=0.5, fr;q=0.5, en;q=0.9", []string{"en", "de", "fr"}}, // stable for equal weights
		{"fr;q=0, en", []string{"en"}},
		{"fr;q=1.5, en;q=-1, de;q=abc, it;q=NaN, es;q=0.3", []string{"es"}},
		{" fr-CA ; q=0.8 ,en-US;Q=0.9", []string{"en-us", "fr-ca"}},
		{"fr;level=1;q=0.4", []string{"fr"}},
		{",,, ;q=1, fr", []string{"fr"}},
		{"<script>, fr", []string{"fr"}},
		{"1fr, zh-Hant-TW", []string{"zh-hant-tw"}},
		{strings.Repeat("x", 36) + ", fr", []string{"fr"}},
		{strings.Repeat("de,", 40) + "fr", slices.Repeat([]string{"de"}, maxLanguageRanges)},
	}
	for _, tt := range tests {
		if got := parseAcceptLanguage(tt.header); !slices.Equal(got, tt.want) {
			t.Errorf("parseAcceptLanguage(%.50q) = %q; want %q", tt.header, got, tt.want)
		}
	}
}

func TestMatchLocale(t *testing.T) {
	tests := []struct {
		tag, want string
		ok        bool
	}{
		{"fr", "fr", true},
		{"fr-CA", "fr", true},
		{"FR_ca", "fr", true},
		{" en-GB ", "en", true},
		{"de", "", false},
		{"", "", false},
		{"-", "", false},
		{"french", "", false},
	}
	for _, tt := range tests {
		got, ok := matchLocale(tt.tag)
		if got != tt.want || ok != tt.ok {
			t.Errorf("matchLocale(%q) = %q, %v; want %q, %v", tt.tag, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzAcceptLanguage checks that no header makes the parser panic and that
// what it returns is always a bounded list of well-formed tags.
func FuzzAcceptLanguage(f *testing.F) {
	for _, s := range []string{
		"", "fr", "fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5", "en;q=0.1, fr", "fr;q=NaN", "fr;q=1e400",
		";;;,,,", "q=1", "fr;q=", "fr;=0.5", "\xff\xfe", "zh-Hant-TW;q=0.001", strings.Repeat("a,", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tags := parseAcceptLanguage(h)
		if len(tags) > maxLanguageRanges {
			t.Fatalf("%d tags; want at most %d", len(tags), maxLanguageRanges)
		}
		for _, tag := range tags {
			if tag == "" || tag == "*" || !validTag(tag) || tag != strings.ToLower(tag) {
				t.Fatalf("tag %q is not a lower-case language range", tag)
			}
		}
		p := &Pages{defaultLocale: "en"}
		if l := p.chooseLocale([]string{h}, h); catalog[l] == nil {
			t.Fatalf("chooseLocale chose %q, which has no catalogue", l)
		}
	})
}

var verb = regexp.MustCompile(`%(\[\d+\])?[a-z]`)

// TestCatalogComplete checks that every language has every English message
// with the same arguments, and no message English lacks.
func TestCatalogComplete(t *testing.T) {
	en := catalog[fallbackLocale]
	for lang, msgs := range catalog {
		for id, msg := range en {
			tr, ok := msgs[id]
			if !ok {
				t.Errorf("%s: message %q is missing", lang, id)
				continue
			}
			if a, b := len(verb.FindAllString(msg, -1)), len(verb.FindAllString(tr, -1)); a != b {
				t.Errorf("%s: message %q has %d arguments; English has %d", lang, id, b, a)
			}
			if strings.TrimSpace(tr) == "" {
				t.Errorf("%s: message %q is empty", lang, id)
			}
		}
		for id := range msgs {
			if base, ok := strings.CutSuffix(id, ".vowel"); ok {
				// A language's form for a name beginning with a vowel
				// (TName): the English message's arguments.
				if a, b := len(verb.FindAllString(en[base], -1)), len(verb.FindAllString(msgs[id], -1)); en[base] == "" || a != b {
					t.Errorf("%s: message %q is a form of %q, which English lacks or with other arguments", lang, id, base)
				}
				continue
			}
			if _, ok := en[id]; !ok {
				t.Errorf("%s: message %q does not exist in English", lang, id)
			}
		}
	}
}

// TestMessageIDsUsed checks that every message ID a template names exists,
// so a typo does not show an ID to a person.
func TestMessageIDsUsed(t *testing.T) {
	entries, err := embeddedTemplates.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`\.T "([^"]+)"`)
	for _, e := range entries {
		b, err := embeddedTemplates.ReadFile("templates/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(b), -1) {
			if !has(m[1]) {
				t.Errorf("%s: unknown message ID %q", e.Name(), m[1])
			}
		}
	}
}

func TestViewT(t *testing.T) {
	v := &View{msgs: map[string]string{"home.hello": "Salut %s"}}
	if got := v.T("home.hello", "a"); got != "Salut a" {
		t.Errorf("T = %q; want Salut a", got)
	}
	if got := v.T("home.sign_out"); got != "Sign out" {
		t.Errorf("T of a message the language lacks = %q; want the English Sign out", got)
	}
	if got := v.T("no.such.id"); got != "no.such.id" {
		t.Errorf("T of an unknown ID = %q; want the ID", got)
	}
}

func TestParseColor(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"#000", 0x000000, true},
		{"#fff", 0xffffff, true},
		{"#1a2", 0x11aa22, true},
		{"#1D4ED8", 0x1d4ed8, true},
		{"navy", 0x000080, true},
		{"RebeccaPurple", 0x663399, true},
		{"", 0, false},
		{"#", 0, false},
		{"#ffff", 0, false},
		{"#-12345", 0, false},
		{"#+12345", 0, false},
		{"# 12345", 0, false},
		{"fff", 0, false},
		{"red ", 0, false},
		{"transparent", 0, false},
		{"currentcolor", 0, false},
		{"inherit", 0, false},
		{"red;}", 0, false},
	}
	for _, tt := range tests {
		got, err := parseColor("PrimaryColor", tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseColor(%q) = %#06x, %v; want %#06x, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "PrimaryColor") {
			t.Errorf("parseColor(%q) error %q does not name the field", tt.in, err)
		}
	}
}

func TestContrast(t *testing.T) {
	if got := contrast(0x000000, 0xffffff); fmt.Sprintf("%.1f", got) != "21.0" {
		t.Errorf("contrast(black, white) = %.2f; want 21", got)
	}
	if got := contrast(0x777777, 0x777777); got != 1 {
		t.Errorf("contrast(x, x) = %.2f; want 1", got)
	}
	// Whichever of black and white text is chosen, it reaches 4.5:1.
	for c := uint32(0); c <= 0xffffff; c += 0x010203 {
		if max(contrast(c, 0), contrast(c, 0xffffff)) < minContrast {
			t.Errorf("%06x: neither black nor white text reaches %.1f:1", c, minContrast)
		}
	}
}

// TestDefaultColoursContrast reads the colours of oauthd.css and checks that
// text stays at 4.5:1 or more on its background, in light and dark mode.
func TestDefaultColoursContrast(t *testing.T) {
	css, err := embeddedStatic.ReadFile("static/oauthd.css")
	if err != nil {
		t.Fatal(err)
	}
	light, dark, ok := strings.Cut(string(css), "prefers-color-scheme: dark")
	if !ok {
		t.Fatal("oauthd.css has no dark mode")
	}
	vars := regexp.MustCompile(`--([a-z-]+):\s*#([0-9a-f]{3,6})\b`)
	read := func(block string, into map[string]uint32) {
		for _, m := range vars.FindAllStringSubmatch(block, -1) {
			c, err := parseColor("css", "#"+m[2])
			if err != nil {
				t.Fatal(err)
			}
			into[m[1]] = c
		}
	}
	lightVars := map[string]uint32{}
	read(light, lightVars)
	darkVars := map[string]uint32{}
	for k, v := range lightVars {
		darkVars[k] = v
	}
	dark, _, _ = strings.Cut(dark, "\n}\n")
	read(dark, darkVars)
	if lightVars["card"] != cardLight || darkVars["card"] != cardDark {
		t.Errorf("card colours %06x, %06x differ from theme.go's %06x, %06x", lightVars["card"], darkVars["card"], cardLight, cardDark)
	}
	pairs := [][2]string{
		{"fg", "card"}, {"muted", "card"}, {"accent", "card"}, {"on-primary", "primary"},
		{"fg", "bg"}, {"alert-fg", "alert-bg"},
	}
	for mode, vars := range map[string]map[string]uint32{"light": lightVars, "dark": darkVars} {
		for _, p := range pairs {
			fg, ok1 := vars[p[0]]
			bg, ok2 := vars[p[1]]
			if !ok1 || !ok2 {
				t.Errorf("%s: --%s or --%s not found", mode, p[0], p[1])
				continue
			}
			if r := contrast(fg, bg); r < minContrast {
				t.Errorf("%s: --%s on --%s contrasts %s:1; want %.1f:1", mode, p[0], p[1], strconv.FormatFloat(r, 'f', 2, 64), minContrast)
			}
		}
		// Input borders and the focus outline are non-text: 3:1 (WCAG 1.4.11).
		for _, p := range [][2]string{{"border", "card"}, {"accent", "bg"}} {
			if r := contrast(vars[p[0]], vars[p[1]]); r < 3 {
				t.Errorf("%s: --%s on --%s contrasts %.2f:1; want 3:1", mode, p[0], p[1], r)
			}
		}
	}
}

// The built-in colours meet the rules theme.go applies to an operator's:
// in dark mode the primary button stands out from the card (WCAG 1.4.11,
// 3:1) and its white text reads on it (1.4.3, 4.5:1).
func TestDefaultDarkPrimaryContrast(t *testing.T) {
	css, err := os.ReadFile("static/oauthd.css")
	if err != nil {
		t.Fatal(err)
	}
	dark := regexp.MustCompile(`(?s)prefers-color-scheme: dark.*?--primary: (#[0-9a-f]{6})`).FindSubmatch(css)
	if dark == nil {
		t.Fatal("no dark --primary in oauthd.css")
	}
	c, err := parseColor("primary", string(dark[1]))
	if err != nil {
		t.Fatal(err)
	}
	if r := contrast(c, cardDark); r < minUIContrast {
		t.Errorf("dark primary %s contrasts %.2f:1 with the dark card; want %d:1", dark[1], r, minUIContrast)
	}
	if r := contrast(c, 0xffffff); r < minContrast {
		t.Errorf("white text on the dark primary %s contrasts %.2f:1; want %.1f:1", dark[1], r, minContrast)
	}
}
