package storetest

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The shape of the race tests of the single-use steps (ConsumeAuthCode,
// RotateRefreshToken, RedeemAuthCode, RotateRefreshTokenFunc,
// DeleteAuthRequest): raceGoroutines concurrent calls on one record, in
// raceRounds rounds, each on a record of its own. A store whose step is a
// read followed by a write (check, then set) lets two calls through only
// when the second reads between the first's read and write: one round
// may well miss that window, a few rounds of many calls almost never do.
const (
	raceRounds     = 8
	raceGoroutines = 32
)

// race calls f(0) to f(n-1) concurrently, from n goroutines that start
// together: each says it is running and spins (yielding) until all are,
// so that when they are let go the calls overlap on every CPU, rather
// than starting one after another as the scheduler wakes goroutines
// parked on a channel.
func race(n int, f func(i int)) {
	var (
		ready atomic.Int32
		start atomic.Bool
		wg    sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			ready.Add(1)
			for !start.Load() {
				runtime.Gosched()
			}
			f(i)
		})
	}
	for ready.Load() < int32(n) {
		runtime.Gosched()
	}
	start.Store(true)
	wg.Wait()
}
