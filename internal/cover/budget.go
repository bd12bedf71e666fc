package cover

import "time"

// Budget is what a schedule costs and the latency it adds, for a packet
// size and the mix delays of a path.
type Budget struct {
	PacketsPerHour float64 // requests sent on the client's link per hour (all three processes)
	BytesPerHour   float64 // PacketsPerHour × packet size, upstream; replies of the same size come back
	SendWait       time.Duration
	MixDelays      time.Duration // mean of the mix delays of a send and of a fetch (hops × mean each)
	FetchWait      time.Duration
	Latency        time.Duration // expected send wait + send's mix delays + fetch wait + fetch's mix delays
}

// Estimate is the Budget of cfg with packets of packetSize bytes and mix
// delays of mean mixMean at mixHops hops of each request (the middle and
// the exit: 2). Expected latency of a message from one client's send to
// another's fetch: the send waits 1/λ_P for its tick (memoryless), its
// request is held mixHops × mixMean on the way, then the recipient's
// next fetch waits 1/λ_F and is itself held mixHops × mixMean before it
// reads. Network time is left out.
func Estimate(cfg Config, packetSize int, mixMean time.Duration, mixHops int) Budget {
	sec := func(rate float64) time.Duration {
		if rate <= 0 {
			return 0
		}
		return time.Duration(float64(time.Second) / rate)
	}
	b := Budget{
		PacketsPerHour: 3600 * (cfg.SendRate + cfg.LoopRate + cfg.FetchRate),
		SendWait:       sec(cfg.SendRate),
		FetchWait:      sec(cfg.FetchRate),
		MixDelays:      time.Duration(mixHops) * mixMean,
	}
	b.BytesPerHour = b.PacketsPerHour * float64(packetSize)
	b.Latency = b.SendWait + b.MixDelays + b.FetchWait + b.MixDelays
	return b
}
