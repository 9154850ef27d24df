package main

import (
	"net/http"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/web"
)

// mountPages mounts the web pages: the chat widget, the agent desk, the
// wallboard, the admin page and their assets. "/" leads a visitor to the
// chat widget.
func mountPages(srv *api.Server) {
	pages := web.Handler()
	srv.Handle("GET /chat", pages)
	srv.Handle("GET /desk", pages)
	srv.Handle("GET /wallboard", pages)
	srv.Handle("GET /admin", pages)
	srv.Handle("GET /static/", pages)
	srv.Handle("GET /{$}", http.RedirectHandler("/chat", http.StatusFound))
}
