package main

import (
	"log/slog"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/storage"
)

// mountGateways builds the channel gateways and mounts their HTTP parts.
func mountGateways(cfg *config.Config, srv *api.Server, router *queue.Router, db *storage.DB, log *slog.Logger) ([]gateway, error) {
	var gws []gateway
	return gws, nil
}
