package main

import "github.com/taxline/taxline/api"

// mountPages mounts the web pages.
func mountPages(srv *api.Server) {}
