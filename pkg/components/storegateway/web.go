package storegateway

import (
	"strconv"

	"github.com/go-kit/log"
	"github.com/opentracing/opentracing-go"
	"github.com/prometheus/common/route"
	blocksapi "github.com/thanos-io/thanos/pkg/api/blocks"
	"github.com/thanos-io/thanos/pkg/component"
	extpromhttp "github.com/thanos-io/thanos/pkg/extprom/http"
	thanoslogging "github.com/thanos-io/thanos/pkg/logging"
	"github.com/thanos-io/thanos/pkg/ui"
)

// newBlocksAPI is stock thanos store's blocks API, read-only. Its
// /status/flags answers with the flags map: only the UI label and the
// disabled admin operations, never the bucket's configuration. With admin
// operations disabled it never writes to (or holds) the bucket: a block
// marked for deletion here would vanish from the store with no compactor
// to act on it.
func newBlocksAPI(logger log.Logger, label string) *blocksapi.BlocksAPI {
	flags := map[string]string{
		"bucket-web-label":         label,
		"disable-admin-operations": strconv.FormatBool(true),
	}
	return blocksapi.NewBlocksAPI(logger, false, label, flags, nil)
}

// RegisterWeb registers the Thanos bucket UI (its blocks page) and its
// blocks API at /api/v1 on r, as stock thanos store serves them; prefix is
// the path r is mounted under, which the UI's React app calls the API
// through. The handlers are not instrumented: the query UI's middleware
// already owns the http_* series of the same handler names
// ("react-static", "status_flags"), and a second set would collide in
// /metrics.
func (g *StoreGateway) RegisterWeb(r *route.Router, prefix string) {
	ins := extpromhttp.NewNopInstrumentationMiddleware()
	ui.NewBucketUI(g.opts.Logger, prefix, "", component.Bucket).Register(r, ins)
	g.blocks.Register(r.WithPrefix("/api/v1"), opentracing.NoopTracer{}, g.opts.Logger, ins, thanoslogging.NewHTTPServerMiddleware(g.opts.Logger))
}
