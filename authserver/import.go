package authserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// ImportedPatient is a patient from the EHR (see fhirimport) as the AS
// stores it: the name and every alias are matchable; birthdate and SSN-4
// are kept only as the profile's peppered HMACs.
type ImportedPatient struct {
	ID, Name        string
	Aliases         []string
	Birthdate       string // YYYY-MM-DD
	SSNLast4        string
	Phone, LineType string
}

// Importer upserts imported patients in batches by id and counts which were
// new and which replaced an earlier import. It is not safe for concurrent use.
type Importer struct {
	Store     Store
	Pepper    []byte
	BatchSize int  // default 1000
	DryRun    bool // count only (existence is checked row by row), write nothing

	Inserted, Updated int

	mac   *session.MAC
	dir   directory
	batch []session.Patient
	ids   map[string]bool
	seen  map[string]bool // dry run: ids of earlier batches
}

// Add queues one patient; a full batch is written.
func (im *Importer) Add(ctx context.Context, p ImportedPatient) error {
	if im.mac == nil {
		if len(im.Pepper) < 16 {
			return fmt.Errorf("authserver: import needs the pepper")
		}
		im.mac = session.NewMAC(im.Pepper)
		im.dir = newDirectory(im.Pepper)
		im.ids = map[string]bool{}
		if im.BatchSize <= 0 {
			im.BatchSize = 1000
		}
	}
	if _, err := time.Parse("2006-01-02", p.Birthdate); err != nil || len(p.SSNLast4) != 4 || p.ID == "" {
		return fmt.Errorf("authserver: import %s: birthdate, SSN-4 and id are required", p.ID)
	}
	if im.ids[p.ID] { // the same id twice in one batch: write the first one before the second
		if err := im.Flush(ctx); err != nil {
			return err
		}
	}
	// The same keyed directory keys the AS seeds and looks up (directory.go):
	// no plaintext name in the store, and an imported caller is found.
	keys := im.dir.keys(p.Name, p.Phone)
	for _, a := range p.Aliases {
		keys = append(keys, im.dir.nameKeys(a)...)
	}
	im.ids[p.ID] = true
	im.batch = append(im.batch, session.Patient{
		ID: p.ID, Name: p.Name, NameKeys: keys,
		DOBHash:  fieldHash(im.mac, p.ID, fieldDOB, p.Birthdate),
		SSN4Hash: fieldHash(im.mac, p.ID, fieldSSN4, p.SSNLast4),
		Phone:    p.Phone, LineType: p.LineType,
	})
	if len(im.batch) >= im.BatchSize {
		return im.Flush(ctx)
	}
	return nil
}

// Flush writes the queued patients. New and updated rows are told apart by
// the directory's size before and after (the import is the only writer of
// new ids while it runs; a dry run looks each id up instead).
func (im *Importer) Flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	defer func() {
		im.batch = im.batch[:0]
		clear(im.ids)
	}()
	if im.DryRun {
		if im.seen == nil {
			im.seen = map[string]bool{}
		}
		for _, p := range im.batch {
			_, err := im.Store.GetPatient(ctx, p.ID)
			seen := im.seen[p.ID]
			im.seen[p.ID] = true
			switch {
			case err == nil || seen:
				im.Updated++
			case errors.Is(err, session.ErrNotFound):
				im.Inserted++
			default:
				return err
			}
		}
		return nil
	}
	before, err := im.Store.CountPatients(ctx)
	if err != nil {
		return err
	}
	if err := im.Store.UpsertPatients(ctx, im.batch); err != nil {
		return err
	}
	after, err := im.Store.CountPatients(ctx)
	if err != nil {
		return err
	}
	im.Inserted += after - before
	im.Updated += len(im.batch) - (after - before)
	return nil
}
