// Copyright (c) The Thanos Authors.
// Licensed under the Apache License 2.0.

// Added by monstackd (third_party/_thanos/README.md): the query-frontend's
// HTTP handler lives in an internal package, which only cmd/thanos could
// call.

package queryfrontend

import (
	"net/http"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/thanos-io/thanos/internal/cortex/frontend/transport"
)

// NewHandler is stock thanos query-frontend's HTTP handler over rt (the
// tripperware): query stats, slow-query log, Server-Timing, errors.
// cfg.CortexHandlerConfig must be set.
func NewHandler(cfg Config, rt http.RoundTripper, logger log.Logger, reg prometheus.Registerer) http.Handler {
	return transport.NewHandler(*cfg.CortexHandlerConfig, rt, logger, reg)
}
