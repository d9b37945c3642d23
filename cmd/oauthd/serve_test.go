package main

import (
	"bytes"
	"maps"
	"strings"
	"testing"
)

func testEnv(vars map[string]string) *env {
	return &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(k string) string { return vars[k] }}
}

// The short page flags and variables (--theme-dir, OAUTHD_PRODUCT_NAME...)
// set the ui.* keys; flags win over the environment, and a key's own
// variable over its short one.
func TestServeUIFlags(t *testing.T) {
	e := testEnv(map[string]string{
		"OAUTHD_THEME_DIR":         "/env/theme",
		"OAUTHD_PRODUCT_NAME":      "Env ID",
		"OAUTHD_PRIMARY_COLOR":     "#123456",
		"OAUTHD_ACCENT_COLOR":      "navy",
		"OAUTHD_DEFAULT_LOCALE":    "en",
		"OAUTHD_UI_DEFAULT_LOCALE": "fr",
	})
	theme := t.TempDir()
	cfg, err := loadConfig("serve", []string{"--product-name", "Example ID", "--theme-dir", theme,
		"--scope-description", "calendar.read=See your calendar", "--scope-description", "email = Your e-mail address, verified"}, e)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.UI
	if o.ProductName != "Example ID" || o.ThemeDir != theme || o.PrimaryColor != "#123456" || o.AccentColor != "navy" || o.DefaultLocale != "fr" {
		t.Errorf("ui options %+v", o)
	}
	want := map[string]string{"calendar.read": "See your calendar", "email": "Your e-mail address, verified"}
	if !maps.Equal(o.ScopeDescriptions, want) {
		t.Errorf("ScopeDescriptions = %v; want %v", o.ScopeDescriptions, want)
	}
}

func TestServeScopeDescriptionNeedsText(t *testing.T) {
	for _, arg := range []string{"calendar.read", "=text", "calendar.read="} {
		if _, err := loadConfig("serve", []string{"--scope-description", arg}, testEnv(nil)); err == nil {
			t.Errorf("--scope-description %q was accepted", arg)
		}
	}
}

// A bad colour stops serve at start-up, naming the key.
func TestServeBadColour(t *testing.T) {
	e := testEnv(nil)
	code := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--db", t.TempDir() + "/o.db", "--primary-color", "bleu"}, e)
	if got := e.stderr.(*bytes.Buffer).String(); code != 1 || !strings.Contains(got, "primary_color") {
		t.Errorf("exit %d, stderr %q; want 1 naming ui.primary_color", code, got)
	}
}
