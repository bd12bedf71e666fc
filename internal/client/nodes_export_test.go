package client

import "time"

// SetNetClock moves the clock the stored node list's age is judged by, for
// engines opened from now on; the returned function restores it.
func SetNetClock(now func() time.Time) (restore func()) {
	old := netClock
	netClock = now
	return func() { netClock = old }
}
