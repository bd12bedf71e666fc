package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

func benchFilesCmd() *cobra.Command {
	var (
		network  string
		nodes    int
		sizeMiB  int
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "files",
		Short: "File upload and download throughput, beside raw mailbox put/get of the same bytes",
		Long: `Upload a random file of --size MiB as erasure-coded shares (the way 'umbra
send --file' does, with --parallel requests in flight through onion
paths), download it back, and put and get the same bytes as plain mailbox
messages of 120 KiB (the raw path of 'umbra mailbox put/get') with as many
in flight, all in the same run. It prints MB/s, the time to the first
byte of the download, what the nodes store per byte of file, and CPU per
MB of file in this process and in the nodes (Linux). Without --network it
starts its own devnet of --nodes processes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			var d *devnet.Devnet
			if network == "" {
				dir, err := os.MkdirTemp("", "umbra-bench-files-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				if d, err = startDevnet(ctx, io.Discard, filepath.Join(dir, "net"), nodes, 8); err != nil {
					return err
				}
				defer d.Stop()
				network = d.BootstrapFile()
				time.Sleep(devnet.MinAge + time.Second)
			}
			c, err := dialNetwork(cmd, network)
			if err != nil {
				return err
			}
			defer c.Close()
			size := int64(sizeMiB) << 20
			data := make([]byte, size)
			rand.Read(data)
			mode := "3-hop onion"
			if direct, _ := cmd.Flags().GetBool("direct"); direct {
				mode = "direct"
			}
			fmt.Fprintf(out, "network: %d nodes; file %d MiB, %d requests in flight, %s\n", len(c.Nodes()), sizeMiB, parallel, mode)
			mb := float64(size) / 1e6
			nodeCPU := func() time.Duration {
				var sum time.Duration
				if d != nil {
					for _, p := range d.Procs {
						sum += procCPU(strconv.Itoa(p.Pid()))
					}
				}
				return sum
			}
			report := func(what string, el, cpu, ncpu time.Duration, extra string) {
				fmt.Fprintf(out, "%-28s %7.2f MB/s  %6.1fs  client CPU %5.1f ms/MB", what, mb/el.Seconds(), el.Seconds(), float64(cpu.Milliseconds())/mb)
				if d != nil {
					fmt.Fprintf(out, "  nodes CPU %5.1f ms/MB", float64(ncpu.Milliseconds())/mb)
				}
				fmt.Fprintln(out, extra)
			}

			// Files: upload, then download.
			u, err := files.NewUpload(size, c.ShareNodes(), time.Now().Add(time.Hour).UnixMilli())
			if err != nil {
				return err
			}
			cpu0, ncpu0, t0 := procCPU("self"), nodeCPU(), time.Now()
			if err := u.Run(ctx, bytes.NewReader(data), &files.Transfer{Net: c, Parallel: parallel}); err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			report("file upload", time.Since(t0), procCPU("self")-cpu0, nodeCPU()-ncpu0,
				fmt.Sprintf("  (%d of %d shares of %d KiB a stripe, %d stripes)", u.Params.K, u.Params.N, u.Params.ShareSize>>10, u.Stripes()))
			man, err := u.Manifest()
			if err != nil {
				return err
			}
			if d != nil {
				var stored int64
				for i := range d.Procs {
					if st, err := d.Status(ctx, i+1); err == nil { // nodes count from 1
						stored += st.ShareBytes
					}
				}
				fmt.Fprintf(out, "storage on the nodes: %.3f bytes per byte of file (%d B of shares)\n", float64(stored)/float64(size), stored)
			}
			var first time.Duration
			sink := &checkWriter{want: data}
			cpu0, ncpu0, t0 = procCPU("self"), nodeCPU(), time.Now()
			err = files.Download(ctx, man, sink, nil, &files.Transfer{Net: c, Parallel: parallel, Progress: func(done, total int64) {
				if first == 0 {
					first = time.Since(t0)
				}
			}})
			if err != nil {
				return fmt.Errorf("download: %w", err)
			}
			report("file download", time.Since(t0), procCPU("self")-cpu0, nodeCPU()-ncpu0, fmt.Sprintf("  first stripe after %s", first.Round(time.Millisecond)))
			if sink.bad.Load() {
				return fmt.Errorf("the downloaded file differs")
			}

			// Raw: the same bytes as mailbox messages.
			const chunk = 120 << 10
			n := int((size + chunk - 1) / chunk)
			keys := make([]*mailbox.Key, n)
			for i := range keys {
				if keys[i], err = mailbox.NewKey(); err != nil {
					return err
				}
			}
			piece := func(i int) []byte { return data[int64(i)*chunk : min(int64(i+1)*chunk, size)] }
			cpu0, ncpu0, t0 = procCPU("self"), nodeCPU(), time.Now()
			if err := inParallel(ctx, n, parallel, func(i int) error {
				_, err := c.Put(ctx, keys[i].ID(), 0, time.Hour, piece(i))
				return err
			}); err != nil {
				return fmt.Errorf("mailbox put: %w", err)
			}
			report("raw mailbox put (R copies)", time.Since(t0), procCPU("self")-cpu0, nodeCPU()-ncpu0, fmt.Sprintf("  (%d messages of 120 KiB, R=%d)", n, c.Params().Replication))
			cpu0, ncpu0, t0 = procCPU("self"), nodeCPU(), time.Now()
			var rawFirst time.Duration
			var once sync.Once
			if err := inParallel(ctx, n, parallel, func(i int) error {
				// The put's acknowledgement came with a write quorum; the
				// fan-out to the rest of the swarm goes on behind it, so a
				// read may find none yet: read again, a few times.
				var ms []swarmclient.Message
				var err error
				for try := 0; try < 5; try++ {
					if ms, err = c.Get(ctx, keys[i], 0); err != nil || len(ms) > 0 {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				if err == nil && (len(ms) != 1 || !bytes.Equal(ms[0].Data, piece(i))) {
					err = fmt.Errorf("mailbox %d: %d messages", i, len(ms))
				}
				once.Do(func() { rawFirst = time.Since(t0) })
				return err
			}); err != nil {
				return fmt.Errorf("mailbox get: %w", err)
			}
			report("raw mailbox get", time.Since(t0), procCPU("self")-cpu0, nodeCPU()-ncpu0, fmt.Sprintf("  first message after %s", rawFirst.Round(time.Millisecond)))
			return nil
		},
	}
	addNetworkFlag(cmd, &network)
	cmd.Flags().Lookup("network").Usage = "network file (default: start a devnet)"
	cmd.Flags().IntVar(&nodes, "nodes", 12, "devnet size when no --network is given")
	cmd.Flags().IntVar(&sizeMiB, "size", 100, "file size in MiB (at most 100)")
	cmd.Flags().IntVar(&parallel, "parallel", 32, "requests in flight")
	return cmd
}

// inParallel runs f(0..n-1), conc at a time, and returns the first error.
func inParallel(ctx context.Context, n, conc int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil || firstErr.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	return ctx.Err()
}

// checkWriter compares what is written at each offset with want.
type checkWriter struct {
	want []byte
	bad  atomic.Bool
}

func (w *checkWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(w.want)) || !bytes.Equal(p, w.want[off:off+int64(len(p))]) {
		w.bad.Store(true)
	}
	return len(p), nil
}

// procCPU is the CPU time (user and system) of process pid ("self" for
// this one) from /proc; 0 where there is none.
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 12th and 13th, in clock ticks (100 a second).
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
