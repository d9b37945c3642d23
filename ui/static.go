package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/oauthd/oauthd"
)

//go:embed static
var embeddedStatic embed.FS

// staticCacheControl lets browsers keep a static file for an hour, then
// revalidate it with its ETag. The URLs carry no version, so a longer
// lifetime would keep an old stylesheet after an upgrade or a theme change.
const staticCacheControl = "public, max-age=3600"

// maxStaticFile bounds a file read from ThemeDir/static, so a stray large
// file does not sit in memory.
const maxStaticFile = 4 << 20

// contentTypes are the types of the files a theme is likely to ship. They
// do not depend on the system's MIME tables, because with nosniff a wrong
// type breaks a stylesheet or a script.
var contentTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".avif":  "image/avif",
	".ico":   "image/vnd.microsoft.icon",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

// staticFile is a static file held in memory.
type staticFile struct {
	body        []byte
	contentType string
	etag        string
}

func newStaticFile(name string, body []byte) *staticFile {
	ext := strings.ToLower(path.Ext(name))
	ct, ok := contentTypes[ext]
	if !ok {
		if ct = mime.TypeByExtension(ext); ct == "" {
			ct = "application/octet-stream"
		}
	}
	sum := sha256.Sum256(body)
	return &staticFile{body: body, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
}

// staticFiles reads the embedded static files, then those of
// ThemeDir/static over them, keyed by slash-separated name ("oauthd.css",
// "img/logo.svg").
func staticFiles(themeDir string) (map[string]*staticFile, error) {
	files := make(map[string]*staticFile)
	sub, err := fs.Sub(embeddedStatic, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: embedded static files: %w", err)
	}
	if err := readStatic(sub, files); err != nil {
		return nil, fmt.Errorf("ui: embedded static files: %w", err)
	}
	if themeDir == "" {
		return files, nil
	}
	dir := filepath.Join(themeDir, "static")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return files, nil
	}
	if err := readStatic(os.DirFS(dir), files); err != nil {
		return nil, fmt.Errorf("ui: ThemeDir: static: %w", err)
	}
	return files, nil
}

// readStatic adds every regular file of fsys to files, skipping hidden
// files and directories.
func readStatic(fsys fs.FS, files map[string]*staticFile) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		fi, err := fs.Stat(fsys, name) // follows a symbolic link
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		if fi.Size() > maxStaticFile {
			return fmt.Errorf("%s is larger than %d bytes", name, maxStaticFile)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		files[name] = newStaticFile(name, body)
		return nil
	})
}

// staticHandler serves the static files from memory.
type staticHandler struct {
	files map[string]*staticFile
}

// ServeHTTP serves GET and HEAD requests for /static/<name>. Only the names
// read by New exist, so no path, however encoded, reaches the file system.
func (h *staticHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	name, ok := strings.CutPrefix(r.URL.Path, oauthd.StaticPath)
	f := h.files[name]
	if !ok || f == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd.Set("Content-Type", f.contentType)
	hd.Set("Cache-Control", staticCacheControl)
	hd.Set("ETag", f.etag)
	if rg := r.Header.Get("Range"); rg != "" && !strings.HasPrefix(strings.TrimSpace(rg), "bytes=") {
		// RFC 9110 §14.2: a range unit the server does not know is
		// ignored (the whole file, 200), where ServeContent says 416.
		r = r.Clone(r.Context())
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}
