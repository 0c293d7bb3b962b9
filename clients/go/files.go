package dataport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	filesv1 "github.com/dataport/dataport/clients/go/dataport/files/v1"
	"google.golang.org/genproto/googleapis/bytestream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ChunkSize is how many bytes of a file UploadFile sends per message.
const ChunkSize = 1 << 20

// maxGenerations is how many finished resumable uploads of one name and
// content UploadFile steps over (each a time the file was uploaded, then
// deleted or replaced) before it gives up.
const maxGenerations = 1000

// Progress is told how a transfer stands: done bytes of total. It is
// called once before the first byte moves (with done at the offset a
// resumed upload continues from, else 0) and after every chunk, on the
// goroutine that called UploadFile or DownloadFile.
type Progress func(done, total int64)

// UploadOption changes what UploadFile does.
type UploadOption interface{ applyUpload(*uploadConfig) }

// DownloadOption changes what DownloadFile does.
type DownloadOption interface{ applyDownload(*downloadConfig) }

type uploadConfig struct {
	name     string
	resume   bool
	progress Progress
}

type downloadConfig struct {
	progress Progress
}

type nameOption string

func (o nameOption) applyUpload(c *uploadConfig) { c.name = string(o) }

// WithName stores the file under name instead of its base name.
func WithName(name string) UploadOption { return nameOption(name) }

type resumeOption struct{}

func (resumeOption) applyUpload(c *uploadConfig) { c.resume = true }

// Resume makes the upload resumable: the file is hashed first, then
// written through google.bytestream.ByteStream under an upload id derived
// from the name and the sha256 (ResumableUploadID), so running the same
// upload again after a cut connection or a server restart continues from
// what the server had durably stored, and one that had finished sends
// nothing. The dataport CLI's `upload --resume` uses the same ids, so
// either can continue the other's upload. A rerun right after a cut may
// find the server still winding the cut call down; it then asks again
// where the server stands, for up to 5 s.
func Resume() UploadOption { return resumeOption{} }

// ProgressOption reports a transfer's progress; it is both an
// UploadOption and a DownloadOption.
type ProgressOption struct{ fn Progress }

func (o ProgressOption) applyUpload(c *uploadConfig)     { c.progress = o.fn }
func (o ProgressOption) applyDownload(c *downloadConfig) { c.progress = o.fn }

// WithProgress calls fn as the transfer goes (see Progress).
func WithProgress(fn Progress) ProgressOption { return ProgressOption{fn} }

func (fn Progress) report(done, total int64) {
	if fn != nil {
		fn(done, total)
	}
}

// UploadFile stores the file at path on the server under its base name
// (or WithName's) and answers the file as stored, once it is durable. The
// data goes in ChunkSize messages of dataport.files.v1 Upload, hashed as
// it is read; the sha256 follows in the trailer, so the server stores
// nothing unless it received exactly what was read (DATA_LOSS otherwise).
// Memory use does not grow with the file. With Resume, the upload goes
// through ByteStream instead and can be continued after a cut.
//
// An error from the server is its status, wrapped: status.Code(err) gives
// its code (INVALID_ARGUMENT for a name the server refuses,
// RESOURCE_EXHAUSTED for a file over its limit, ...).
func (c *Client) UploadFile(ctx context.Context, path string, opts ...UploadOption) (*filesv1.File, error) {
	cfg := uploadConfig{name: filepath.Base(path)}
	for _, o := range opts {
		o.applyUpload(&cfg)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("upload %s: not a regular file", path)
	}
	if cfg.resume {
		return c.uploadResumable(ctx, f, info.Size(), cfg)
	}
	return c.upload(ctx, f, info.Size(), cfg)
}

func (c *Client) upload(ctx context.Context, f *os.File, total int64, cfg uploadConfig) (*filesv1.File, error) {
	// Cancelling the call on any early return is what tells the server to
	// store nothing.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Files.Upload(ctx)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", cfg.name, err)
	}
	// send reports a failed Send by the call's status, which only
	// CloseAndRecv gives (Send answers io.EOF).
	send := func(req *filesv1.UploadRequest) error {
		if err := stream.Send(req); err != nil {
			if errors.Is(err, io.EOF) {
				_, err = stream.CloseAndRecv()
			}
			return fmt.Errorf("upload %s: %w", cfg.name, err)
		}
		return nil
	}
	header := &filesv1.UploadRequest{Kind: &filesv1.UploadRequest_Header{Header: &filesv1.UploadHeader{Name: cfg.name}}}
	if err := send(header); err != nil {
		return nil, err
	}
	hash := sha256.New()
	var done int64
	cfg.progress.report(0, total)
	for {
		// A fresh buffer each time: gRPC may still hold the last message.
		buf := make([]byte, ChunkSize)
		n, rerr := io.ReadFull(f, buf)
		if n > 0 {
			hash.Write(buf[:n])
			if err := send(&filesv1.UploadRequest{Kind: &filesv1.UploadRequest_Chunk{Chunk: buf[:n]}}); err != nil {
				return nil, err
			}
			done += int64(n)
			cfg.progress.report(done, total)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("upload %s: %w", cfg.name, rerr)
		}
	}
	if done != total {
		return nil, fmt.Errorf("upload %s: %s changed while it was read: %d bytes, then %d", cfg.name, f.Name(), total, done)
	}
	digest := hex.EncodeToString(hash.Sum(nil))
	trailer := &filesv1.UploadRequest{Kind: &filesv1.UploadRequest_Trailer{Trailer: &filesv1.UploadTrailer{Sha256: digest}}}
	if err := send(trailer); err != nil {
		return nil, err
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", cfg.name, err)
	}
	file := resp.GetFile()
	if file.GetSize() != uint64(done) || file.GetSha256() != digest {
		return nil, fmt.Errorf("upload %s: sent %d bytes with sha256 %s, the server stored %d bytes with sha256 %s",
			cfg.name, done, digest, file.GetSize(), file.GetSha256())
	}
	return file, nil
}

// ResumableUploadID is the upload id under which UploadFile with Resume
// (and the dataport CLI's `upload --resume`) writes the generation-th
// upload of content with this sha256 (64 lowercase hex digits) as name:
// 32 hex digits of sha256("dataport upload\n{name}\n{sha256}\n{generation}").
// Generation 0 is the first upload; a later one is used only when the
// earlier ones finished and the file they stored was since replaced or
// deleted.
func ResumableUploadID(name, sha256Hex string, generation int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "dataport upload\n%s\n%s\n%d", name, sha256Hex, generation))
	return hex.EncodeToString(sum[:])[:32]
}

// UploadResourceName is the ByteStream resource that Write and
// QueryWriteStatus take for an upload of name under uploadID; with a
// sha256 (64 hex digits, or empty for none) the server commits the upload
// only if its data has that digest.
func UploadResourceName(uploadID, name, sha256Hex string) string {
	r := "uploads/" + uploadID + "/files/" + name
	if sha256Hex != "" {
		r += "/sha256/" + sha256Hex
	}
	return r
}

// A resumed Write can meet the server still winding down the call that
// was cut (ABORTED while that call holds the upload, OUT_OF_RANGE while its
// committed size still grows); the upload then asks again where the server
// stands, waiting resumeBackoff between tries, up to resumeTries times.
const (
	resumeTries   = 200
	resumeBackoff = 25 * time.Millisecond
)

// settling reports whether err is what a Write meets while the server is
// still winding down an earlier call of the same upload.
func settling(err error) bool {
	code := status.Code(err)
	return code == codes.Aborted || code == codes.OutOfRange
}

func (c *Client) uploadResumable(ctx context.Context, f *os.File, total int64, cfg uploadConfig) (*filesv1.File, error) {
	fail := func(err error) (*filesv1.File, error) { return nil, fmt.Errorf("upload %s: %w", cfg.name, err) }
	digest, size, err := hashReader(f)
	if err != nil {
		return fail(err)
	}
	if size != total {
		return fail(fmt.Errorf("%s changed while it was read: %d bytes, then %d", f.Name(), total, size))
	}
	for try := 1; ; try++ {
		resource, offset, started, stored, err := c.resumePoint(ctx, cfg.name, digest)
		if err != nil {
			return fail(err)
		}
		if stored != nil {
			cfg.progress.report(total, total)
			return stored, nil
		}
		if offset < 0 || offset > total {
			return fail(fmt.Errorf("the server holds %d bytes of an upload of %d", offset, total))
		}
		if started {
			// Confirm the offset with a Write of no data before sending
			// any: it fails while an earlier call still holds the upload.
			err = c.confirmOffset(ctx, resource, offset)
		}
		if err == nil {
			err = c.writeFrom(ctx, f, resource, offset, total, cfg.progress)
		}
		if err == nil {
			break
		}
		if !settling(err) || try == resumeTries {
			return fail(err)
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(resumeBackoff):
		}
	}
	stat, err := c.Files.Stat(ctx, &filesv1.StatRequest{Name: cfg.name})
	if err != nil {
		return fail(err)
	}
	if got := stat.GetFile(); got.GetSha256() != digest {
		return fail(fmt.Errorf("stored with sha256 %s, but the file of that name now has %s", digest, got.GetSha256()))
	}
	return stat.GetFile(), nil
}

// confirmOffset writes no data at offset without finishing the upload,
// which the server accepts only if offset is its committed size and no
// other call is writing the upload.
func (c *Client) confirmOffset(ctx context.Context, resource string, offset int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.ByteStream.Write(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&bytestream.WriteRequest{ResourceName: resource, WriteOffset: offset}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if resp.GetCommittedSize() != offset {
		return status.Errorf(codes.OutOfRange, "the upload holds %d bytes, not %d", resp.GetCommittedSize(), offset)
	}
	return nil
}

// writeFrom sends f from offset to total through ByteStream Write and
// finishes the upload.
func (c *Client) writeFrom(ctx context.Context, f *os.File, resource string, offset, total int64, progress Progress) error {
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.ByteStream.Write(ctx)
	if err != nil {
		return err
	}
	send := func(req *bytestream.WriteRequest) error {
		if err := stream.Send(req); err != nil {
			if errors.Is(err, io.EOF) {
				_, err = stream.CloseAndRecv()
			}
			return err
		}
		return nil
	}
	done := offset
	progress.report(done, total)
	for done < total {
		buf := make([]byte, min(ChunkSize, total-done))
		if _, err := io.ReadFull(f, buf); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				err = fmt.Errorf("%s changed while it was read: shorter than %d bytes", f.Name(), total)
			}
			return err
		}
		req := &bytestream.WriteRequest{WriteOffset: done, Data: buf}
		if done == offset {
			req.ResourceName = resource
		}
		if err := send(req); err != nil {
			return err
		}
		done += int64(len(buf))
		progress.report(done, total)
	}
	last := &bytestream.WriteRequest{WriteOffset: done, FinishWrite: true}
	if done == offset {
		last.ResourceName = resource
	}
	if err := send(last); err != nil {
		return err
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if resp.GetCommittedSize() != total {
		return fmt.Errorf("the server committed %d bytes of %d", resp.GetCommittedSize(), total)
	}
	return nil
}

// resumePoint finds where a resumable upload of name with this content
// stands: the resource to write, the offset to continue from and whether
// the server knows the upload (started), or the stored file when the
// server already holds name with this content. The upload ids of one name
// and content form a sequence; the upload is the first id not finished. A
// finished one ends the search only if the file it stored is still there.
func (c *Client) resumePoint(ctx context.Context, name, digest string) (resource string, offset int64, started bool, stored *filesv1.File, err error) {
	var current *filesv1.File
	looked := false
	for gen := range maxGenerations {
		resource = UploadResourceName(ResumableUploadID(name, digest, gen), name, digest)
		st, err := c.ByteStream.QueryWriteStatus(ctx, &bytestream.QueryWriteStatusRequest{ResourceName: resource})
		switch {
		case status.Code(err) == codes.NotFound:
			return resource, 0, false, nil, nil
		case err != nil:
			return "", 0, false, nil, err
		case !st.GetComplete():
			return resource, st.GetCommittedSize(), true, nil, nil
		}
		if !looked {
			looked = true
			reply, err := c.Files.Stat(ctx, &filesv1.StatRequest{Name: name})
			switch {
			case status.Code(err) == codes.NotFound:
			case err != nil:
				return "", 0, false, nil, err
			default:
				current = reply.GetFile()
			}
		}
		if current != nil && current.GetSha256() == digest {
			return resource, 0, false, current, nil
		}
	}
	return "", 0, false, nil, fmt.Errorf("uploaded with this content %d times; upload it without Resume", maxGenerations)
}

// hashReader reads r to its end and rewinds it, answering its sha256 and
// size.
func hashReader(f *os.File) (string, int64, error) {
	hash := sha256.New()
	n, err := io.CopyBuffer(hash, f, make([]byte, ChunkSize))
	if err != nil {
		return "", 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(hash.Sum(nil)), n, nil
}

// DownloadFile fetches the stored file name to dest and answers it as the
// server described it. dest is a directory to put it in under its name
// ("" for the current directory), or the path to write it to. The data
// goes to a temporary file beside dest, is checked against the size and
// sha256 the server sent before it, fsynced, and only then renamed onto
// dest, so dest is either left as it was or the whole, checked file;
// memory use does not grow with the file.
//
// A missing file is the server's NOT_FOUND: status.Code(err) ==
// codes.NotFound, and nothing is written.
func (c *Client) DownloadFile(ctx context.Context, name, dest string, opts ...DownloadOption) (*filesv1.File, error) {
	var cfg downloadConfig
	for _, o := range opts {
		o.applyDownload(&cfg)
	}
	fail := func(err error) (*filesv1.File, error) { return nil, fmt.Errorf("download %s: %w", name, err) }
	if dest == "" {
		dest = "."
	}
	if info, err := os.Stat(dest); err == nil && info.IsDir() {
		if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
			return fail(fmt.Errorf("not a file name to store in %s", dest))
		}
		dest = filepath.Join(dest, name)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Files.Download(ctx, &filesv1.DownloadRequest{Names: []string{name}})
	if err != nil {
		return fail(err)
	}
	first, err := stream.Recv()
	if err != nil {
		return fail(err)
	}
	file := first.GetFile()
	if file == nil {
		return fail(errors.New("the server sent data before the file's description"))
	}
	total := int64(file.GetSize())

	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".*.part")
	if err != nil {
		return fail(err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	hash := sha256.New()
	var done int64
	cfg.progress.report(0, total)
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		chunk := msg.GetChunk()
		if msg.GetFile() != nil {
			return fail(errors.New("the server sent a second file"))
		}
		if done+int64(len(chunk)) > total {
			return fail(fmt.Errorf("the server sent more than the %d bytes it announced", total))
		}
		if _, err := tmp.Write(chunk); err != nil {
			return fail(err)
		}
		hash.Write(chunk)
		done += int64(len(chunk))
		cfg.progress.report(done, total)
	}
	if done != total {
		return fail(fmt.Errorf("the server sent %d of the %d bytes it announced", done, total))
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != file.GetSha256() {
		return fail(fmt.Errorf("received data with sha256 %s, the server announced %s", got, file.GetSha256()))
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fail(err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return file, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
