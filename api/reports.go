package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/sla"
	"github.com/taxline/taxline/storage"
)

// Lister reads interaction records by offered time.
type Lister interface {
	List(f storage.Filter) ([]interaction.Record, error)
}

// MonthlyReport computes the Art. 17 report for month (YYYY-MM) from the
// store, with topic labels from the config.
func MonthlyReport(cfg *config.Config, db Lister, month string) (sla.Report, error) {
	cal, err := sla.CalendarFromConfig(cfg)
	if err != nil {
		return sla.Report{}, err
	}
	m, err := time.ParseInLocation("2006-01", month, cal.Location())
	if err != nil {
		return sla.Report{}, fmt.Errorf("month must be YYYY-MM, not %q", month)
	}
	// Tickets and follow-ups cross month ends: read a margin on both sides
	// and let sla.Monthly pick the month's records and their relations.
	recs, err := db.List(storage.Filter{From: m.AddDate(0, -1, 0), To: m.AddDate(0, 2, 0), Limit: 1 << 30})
	if err != nil {
		return sla.Report{}, err
	}
	rep := sla.Monthly(m, recs, sla.DefinitionsFromConfig(cfg), cal)
	rep.LabelTopics(cfg.Chat.Topics)
	return rep, nil
}

func (s *Server) monthly(w http.ResponseWriter, r *http.Request, p Principal) {
	if !p.can(config.RoleSupervisor, config.RoleAdmin, config.RoleAuditor) {
		writeError(w, http.StatusForbidden, "role "+string(p.Role)+" may not read reports")
		return
	}
	month := r.URL.Query().Get("month")
	if _, err := time.Parse("2006-01", month); err != nil {
		writeError(w, http.StatusBadRequest, "month must be YYYY-MM")
		return
	}
	rep, err := MonthlyReport(s.config(), s.store, month)
	if err != nil {
		s.log.Error("api monthly report", "month", month, "err", err)
		writeError(w, http.StatusInternalServerError, "report failed")
		return
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		writeJSON(w, http.StatusOK, rep)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="taxline-%s.csv"`, month))
		if err := rep.CSV(w); err != nil {
			s.log.Error("api monthly csv", "err", err)
		}
	case "xlsx":
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="taxline-%s.xlsx"`, month))
		if err := WriteXLSX(&rep, w); err != nil {
			s.log.Error("api monthly xlsx", "err", err)
		}
	default:
		writeError(w, http.StatusBadRequest, "format must be json, csv or xlsx")
	}
}
