package apidocs

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"net/http"
	"strings"
	"sync"
)

// The Swagger UI release the page is built on: vendored, gzipped, by
// hack/vendor-swagger-ui.sh from its npm package (pinned version and sha256).
//
//go:embed swaggerui/swagger-ui-bundle.js.gz swaggerui/swagger-ui.css.gz swaggerui/VERSION
var swaggerUI embed.FS

// SwaggerUIVersion is the vendored release; its files are served under
// /docs/VERSION/…, so a browser's cache never mixes two releases.
var SwaggerUIVersion = func() string {
	b, _ := swaggerUI.ReadFile("swaggerui/VERSION")
	return strings.TrimSpace(string(b))
}()

// page is /docs. The script that starts Swagger UI is a file of its own, not
// inline, so that the page's Content-Security-Policy can allow scripts from this
// server only.
const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tide API</title>
<link rel="stylesheet" href="/docs/{{V}}/swagger-ui.css">
<style>body{margin:0} #key{display:none;font:14px sans-serif;padding:1em 2em;background:#fafafa;border-bottom:1px solid #ddd}</style>
</head>
<body>
<form id="key">This server needs an API key to describe its models:
<input id="key-value" type="password" autocomplete="off" aria-label="API key"> <button type="submit">Use key</button>
<span id="key-error"></span></form>
<div id="swagger-ui"></div>
<script src="/docs/{{V}}/swagger-ui-bundle.js"></script>
<script src="/docs/{{V}}/init.js"></script>
</body>
</html>
`

// initScript loads /openapi.json; when the server answers 401 (API keys are on),
// it asks for a key, kept in this page's memory only, and sends it with every
// request the page makes, the document's included.
const initScript = `(function () {
  function start(key) {
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      tryItOutEnabled: false,
      requestInterceptor: function (req) {
        if (key) { req.headers["X-API-Key"] = key; }
        return req;
      }
    });
  }
  fetch("/openapi.json").then(function (r) {
    if (r.status !== 401) { start(""); return; }
    var form = document.getElementById("key");
    form.style.display = "block";
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var key = document.getElementById("key-value").value;
      fetch("/openapi.json", {headers: {"X-API-Key": key}}).then(function (r2) {
        if (r2.status === 401) { document.getElementById("key-error").textContent = " that key is not accepted"; return; }
        form.style.display = "none";
        start(key);
      });
    });
  });
})();
`

// contentSecurityPolicy: scripts and styles from this server only (Swagger UI
// sets inline styles; its images are data: URLs).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"

// Register mounts GET /docs and its assets on mux.
func Register(mux *http.ServeMux) {
	html := []byte(strings.ReplaceAll(page, "{{V}}", SwaggerUIVersion))
	mux.HandleFunc("GET /docs", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(html)
	})
	prefix := "/docs/" + SwaggerUIVersion + "/"
	mux.HandleFunc("GET "+prefix+"init.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		io.WriteString(w, initScript)
	})
	for name, ctype := range map[string]string{"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8"} {
		mux.Handle("GET "+prefix+name, &asset{name: "swaggerui/" + name + ".gz", ctype: ctype})
	}
}

// asset serves one embedded gzipped file: as it is to clients that accept gzip
// (every browser), decompressed once and kept for any that do not.
type asset struct {
	name, ctype string
	once        sync.Once
	plain       []byte
}

func (a *asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	gz, err := swaggerUI.ReadFile(a.name)
	if err != nil {
		http.Error(w, `{"error":"asset missing from this build"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		w.Write(gz)
		return
	}
	a.once.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err == nil {
			a.plain, _ = io.ReadAll(zr)
		}
	})
	w.Write(a.plain)
}
