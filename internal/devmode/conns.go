package devmode

import (
	"net"
	"net/http"
	"sync"
)

// closeUnusedOnShutdown makes srv's Shutdown close at once the connections
// on which no request has started. A browser opens such a connection ahead
// of the request it expects next (Chromium does, to the sites it has just
// used), and Shutdown counts a connection in http.StateNew as idle only
// once it is 5 seconds old: a shutdown bounded by 5 seconds then fails
// with context.DeadlineExceeded however idle the server is, and a longer
// one waits those seconds out. Closing it loses at most a request whose
// first bytes arrive just as the server stops, which matters little to a
// development server being stopped. Call it before srv serves; it keeps
// any ConnState hook srv has.
func closeUnusedOnShutdown(srv *http.Server) {
	var mu sync.Mutex
	unused := map[net.Conn]struct{}{}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		if s == http.StateNew {
			unused[c] = struct{}{}
		} else {
			delete(unused, c)
		}
		mu.Unlock()
		if next != nil {
			next(c, s)
		}
	}
	// Shutdown runs this once its listeners are closed: no connection is
	// added after it.
	srv.RegisterOnShutdown(func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range unused {
			_ = c.Close()
		}
	})
}
