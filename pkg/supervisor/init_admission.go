package supervisor

import "github.com/monstackd/monstackd/pkg/components/admission"

// initAdmission builds the memory guard in front of the query APIs: new
// queries get 503 while the live heap is high, running ones are cancelled
// before it reaches GOMEMLIMIT, so that no query takes ingestion down.
func (c *components) initAdmission() (parts, error) {
	q := c.cfg.Query
	g := admission.New(c.logger(Admission), c.d.promReg, admission.Options{
		ShedRatio:   q.ShedMemoryRatio,
		CancelRatio: q.CancelMemoryRatio,
	})
	c.admission = g
	return parts{serve: g.Run}, nil
}
