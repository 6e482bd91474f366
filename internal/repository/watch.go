package repository

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch refreshes the repository whenever something under it changes on disk,
// waiting for quiet (debounce) so that a model file being copied in is read once,
// complete. fsnotify does not recurse, so every model and version folder is
// watched and the set is renewed after each refresh. It also refreshes every
// poll interval (if > 0) as a backstop for filesystems without notifications.
// It returns when ctx ends.
func (r *Repository) Watch(ctx context.Context, debounce, poll time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	watched := map[string]bool{}
	rewatch := func() {
		for _, d := range r.watchDirs() {
			if !watched[d] {
				if err := w.Add(d); err == nil {
					watched[d] = true
				}
			}
		}
	}
	rewatch()
	var pollC <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		pollC = t.C
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	refresh := func() {
		if err := r.Refresh(ctx); err != nil {
			r.log.Error("repository refresh failed", "error", err)
		}
		for d := range watched { // forget folders that are gone
			if _, err := os.Stat(d); err != nil {
				w.Remove(d)
				delete(watched, d)
			}
		}
		rewatch()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if strings.HasPrefix(filepath.Base(ev.Name), ".") && !strings.HasPrefix(filepath.Base(ev.Name), "..") {
				continue // editor swap files; but Kubernetes ConfigMap "..data" swaps count
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Warn("repository watch", "error", err)
		case <-timer.C:
			refresh()
		case <-pollC:
			refresh()
		}
	}
}

// watchDirs lists the folders whose changes matter.
func (r *Repository) watchDirs() []string {
	if r.single {
		return []string{filepath.Dir(r.root)}
	}
	dirs := []string{r.root}
	models, err := os.ReadDir(r.root)
	if err != nil {
		return dirs
	}
	for _, m := range models {
		if !m.IsDir() || strings.HasPrefix(m.Name(), ".") {
			continue
		}
		md := filepath.Join(r.root, m.Name())
		dirs = append(dirs, md)
		versions, _ := os.ReadDir(md)
		for _, v := range versions {
			if v.IsDir() {
				dirs = append(dirs, filepath.Join(md, v.Name()))
			}
		}
	}
	return dirs
}
