// Files uploads a file to a Dataport server and downloads it again with
// the client's helpers, printing their progress; both ends check the
// file's sha256.
//
//	go run ./files -addr 127.0.0.1:50051 -file report.pdf -out inbox
//
// Without -file it uploads a made-up file of -size bytes.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	dataport "github.com/dataport/dataport/clients/go"
)

var (
	addr   = flag.String("addr", "127.0.0.1:50051", "the address to connect to")
	file   = flag.String("file", "", "the file to upload; a made-up one when empty")
	size   = flag.Int64("size", 5<<20, "the size of the made-up file")
	name   = flag.String("name", "", "the name to store it under; its base name when empty")
	outDir = flag.String("out", "", "where to download it; a temporary directory when empty")
	resume = flag.Bool("resume", false, "upload resumably (rerun after a cut to continue)")
)

func main() {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	path := *file
	if path == "" {
		dir, err := os.MkdirTemp("", "dataport-example-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "example.bin")
		if err := madeUp(path, *size); err != nil {
			log.Fatal(err)
		}
	}
	out := *outDir
	if out == "" {
		dir, err := os.MkdirTemp("", "dataport-example-out-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		out = dir
	}

	c, err := dataport.Dial(*addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	opts := []dataport.UploadOption{dataport.WithProgress(progress("upload"))}
	if *name != "" {
		opts = append(opts, dataport.WithName(*name))
	}
	if *resume {
		opts = append(opts, dataport.Resume())
	}
	stored, err := c.UploadFile(ctx, path, opts...)
	if err != nil {
		log.Fatalf("upload: %v", err)
	}
	fmt.Printf("stored %s (%d bytes, sha256 %s)\n", stored.GetName(), stored.GetSize(), stored.GetSha256())

	got, err := c.DownloadFile(ctx, stored.GetName(), out, dataport.WithProgress(progress("download")))
	if err != nil {
		log.Fatalf("download: %v", err)
	}
	fmt.Printf("downloaded %s to %s (%d bytes, sha256 %s)\n",
		got.GetName(), filepath.Join(out, got.GetName()), got.GetSize(), got.GetSha256())
}

// progress prints how a transfer stands, in whole percent.
func progress(what string) func(done, total int64) {
	last := int64(-1)
	return func(done, total int64) {
		pct := int64(100)
		if total > 0 {
			pct = done * 100 / total
		}
		if pct != last {
			last = pct
			fmt.Printf("%s: %3d%% (%d of %d bytes)\n", what, pct, done, total)
		}
	}
}

// madeUp writes size random bytes to path.
func madeUp(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
