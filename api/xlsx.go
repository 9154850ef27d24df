package api

import (
	"fmt"
	"io"

	"github.com/xuri/excelize/v2"

	"github.com/taxline/taxline/sla"
)

// WriteXLSX writes the monthly report as a spreadsheet: one sheet, 月报,
// with the same labelled lines as the CSV, a bold header and widened
// columns.
func WriteXLSX(rep *sla.Report, w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close() //nolint:errcheck // an in-memory workbook: nothing to flush; WriteTo reports write errors
	const sheet = "月报"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return fmt.Errorf("api: xlsx: %w", err)
	}
	for i, row := range rep.Rows() {
		cell, err := excelize.CoordinatesToCellName(1, i+1)
		if err != nil {
			return fmt.Errorf("api: xlsx: %w", err)
		}
		if err := f.SetSheetRow(sheet, cell, &[]any{row[0], row[1]}); err != nil {
			return fmt.Errorf("api: xlsx: %w", err)
		}
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return fmt.Errorf("api: xlsx: %w", err)
	}
	if err := f.SetCellStyle(sheet, "A1", "B1", bold); err != nil {
		return fmt.Errorf("api: xlsx: %w", err)
	}
	if err := f.SetColWidth(sheet, "A", "A", 36); err != nil {
		return fmt.Errorf("api: xlsx: %w", err)
	}
	if err := f.SetColWidth(sheet, "B", "B", 24); err != nil {
		return fmt.Errorf("api: xlsx: %w", err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("api: xlsx: %w", err)
	}
	return nil
}
