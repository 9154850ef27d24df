// Package web serves taxline's pages: the taxpayer's chat widget (/chat),
// the agent desk (/desk), the supervisors' wallboard (/wallboard) and the
// read-only admin page (/admin), with their scripts and styles, all embedded
// in the binary. The pages are plain HTML, CSS and JavaScript with no
// build step and nothing loaded from another site; they talk to the
// gateway over the WebSocket protocol of docs/CHAT.md; the wallboard and
// the admin page poll the JSON API with a bearer token (docs/PAGES.md).
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves GET /chat, /desk, /wallboard, /admin and /static/… .
// Mount it at "/" (or at each of those paths) on the same host as /ws/chat,
// /ws/agent and /api/.
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic("web: embedded static folder missing: " + err.Error())
	}
	mux := http.NewServeMux()
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", headers(fileServer))
	page := func(name string) http.Handler {
		return headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeFileFS(w, r, static, name)
		}))
	}
	mux.Handle("GET /chat", page("chat.html"))
	mux.Handle("GET /desk", page("desk.html"))
	mux.Handle("GET /wallboard", page("wallboard.html"))
	mux.Handle("GET /admin", page("admin.html"))
	return mux
}

// headers adds the pages' security headers. The chat widget may be framed
// by an e-tax page, so it sets no frame-ancestors restriction of its own;
// the deployment's reverse proxy narrows that to the bureau's hosts.
// media-src allows blob: because the desk plays a voicemail it fetched
// with its bearer token.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy",
			"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}
