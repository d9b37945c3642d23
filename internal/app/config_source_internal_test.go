package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Errors about a value say where it was set, as the other configuration
// errors do: the configuration file named by OAUTHD_CONFIG or --config,
// the ui.* keys and the TLS files (with the file at fault), and what
// config check finds (CheckDeployment).
func TestConfigErrorsNameWhereSet(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writeCert(t, cert, key, "a")
	cert2, key2 := filepath.Join(dir, "c2.pem"), filepath.Join(dir, "k2.pem")
	writeCert(t, cert2, key2, "b")
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not PEM\n"), 0o600)
	theme := filepath.Join(dir, "theme")
	os.MkdirAll(filepath.Join(theme, "templates"), 0o700)
	os.WriteFile(filepath.Join(theme, "templates", "nosuchpage.html"), []byte("x"), 0o600)
	badTemplate := filepath.Join(dir, "badtemplate")
	os.MkdirAll(filepath.Join(badTemplate, "templates"), 0o700)
	os.WriteFile(filepath.Join(badTemplate, "templates", "login.html"), []byte("{{nosuchfunc}}"), 0o600)
	file := filepath.Join(dir, "oauthd.yaml")
	os.WriteFile(file, []byte("ui:\n  primary_color: bleu\n"), 0o600)

	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string // the whole message
	}{
		{"OAUTHD_CONFIG", map[string]string{"OAUTHD_CONFIG": "/nonexistent.yaml"}, nil,
			"config: OAUTHD_CONFIG: open /nonexistent.yaml: no such file or directory"},
		{"--config", nil, []string{"--config", "/nonexistent.yaml"},
			"config: --config: open /nonexistent.yaml: no such file or directory"},
		{"primary colour flag", nil, []string{"--primary-color", "bleu"},
			`config: ui.primary_color: "bleu" is not a colour (want #rgb, #rrggbb or a CSS colour name such as "navy") (set by --primary-color)`},
		{"primary colour variable", map[string]string{"OAUTHD_UI_PRIMARY_COLOR": "bleu"}, nil,
			`config: ui.primary_color: "bleu" is not a colour (want #rgb, #rrggbb or a CSS colour name such as "navy") (set by OAUTHD_UI_PRIMARY_COLOR)`},
		{"primary colour file", map[string]string{"OAUTHD_CONFIG": file}, nil,
			`config: ui.primary_color: "bleu" is not a colour (want #rgb, #rrggbb or a CSS colour name such as "navy") (set by ` + file + ":2)"},
		{"accent colour", map[string]string{"OAUTHD_ACCENT_COLOR": "yellow"}, nil,
			`config: ui.accent_color: "yellow" contrasts 1.1:1 with the white card; links need 4.5:1 (set by OAUTHD_ACCENT_COLOR)`},
		{"theme dir missing", map[string]string{"OAUTHD_THEME_DIR": "/nonexistent/theme"}, nil,
			"config: ui.theme_dir: stat /nonexistent/theme: no such file or directory (set by OAUTHD_THEME_DIR)"},
		{"theme dir file", nil, []string{"--ui-theme-dir", theme},
			"config: ui.theme_dir: " + theme + ": templates/nosuchpage.html overrides no template (want one of "},
		{"theme dir template", nil, []string{"--theme-dir", badTemplate},
			"config: ui.theme_dir: " + badTemplate + ": template: login.html:1: function \"nosuchfunc\" not defined (set by --theme-dir)"},
		{"theme and colour", nil, []string{"--theme-dir", themeWithCSS(t, dir), "--primary-color", "navy"},
			"config: ui.theme_dir: " + filepath.Join(dir, "css") + ": static/theme.css and ui.primary_color/ui.accent_color both set the theme; use one (set by --theme-dir)"},
		{"key file missing", map[string]string{"OAUTHD_TLS_CERT_FILE": cert, "OAUTHD_TLS_KEY_FILE": "/nonexistent/k.pem"}, nil,
			"config: tls.key_file: open /nonexistent/k.pem: no such file or directory (set by OAUTHD_TLS_KEY_FILE)"},
		{"key file not PEM", nil, []string{"--tls-cert-file", cert, "--tls-key-file", garbage},
			"config: tls.key_file: " + garbage + ": tls: failed to find any PEM data in key input (set by --tls-key-file)"},
		{"key of another certificate", nil, []string{"--tls-cert-file", cert, "--tls-key-file", key2},
			"config: tls.key_file: " + key2 + ": tls: private key does not match public key (the certificate of tls.cert_file " + cert + ") (set by --tls-key-file)"},
		{"cert file not PEM", nil, []string{"--tls-cert-file", garbage, "--tls-key-file", key},
			"config: tls.cert_file: " + garbage + ": tls: failed to find any PEM data in certificate input (set by --tls-cert-file)"},
		{"cert file missing", map[string]string{"OAUTHD_TLS_CERT_FILE": "/nonexistent/c.pem", "OAUTHD_TLS_KEY_FILE": key}, nil,
			"config: tls.cert_file: open /nonexistent/c.pem: no such file or directory (set by OAUTHD_TLS_CERT_FILE)"},
	} {
		_, err := loadWith(t, tt.env, tt.args...)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want %q", tt.name, err, tt.want)
		}
	}

	// What config check finds beyond Validate names where it was set too.
	c, err := loadWith(t, map[string]string{"OAUTHD_DB": "/nonexistent-dir/o.db"})
	if err != nil {
		t.Fatal(err)
	}
	want := "config: db: the directory of /nonexistent-dir/o.db: no such file or directory; create it, writable by the server's user (under systemd, StateDirectory= creates it at the unit's first start) (set by OAUTHD_DB)"
	if err := c.CheckDeployment(); err == nil || err.Error() != want {
		t.Errorf("CheckDeployment: %v; want %q", err, want)
	}

	// The CLI's commands read the file's db with ReadFileFrom.
	if _, err := ReadFileFrom("/nonexistent.yaml", "OAUTHD_CONFIG"); err == nil ||
		err.Error() != "config: OAUTHD_CONFIG: open /nonexistent.yaml: no such file or directory" {
		t.Errorf("ReadFileFrom: %v", err)
	}
}

// themeWithCSS makes a theme directory with its own static/theme.css.
func themeWithCSS(t *testing.T, dir string) string {
	d := filepath.Join(dir, "css")
	os.MkdirAll(filepath.Join(d, "static"), 0o700)
	os.WriteFile(filepath.Join(d, "static", "theme.css"), []byte(":root{}"), 0o600)
	return d
}
