// Command mesh-client shows a Go program using the mesh through its gateway:
// it registers a new user, logs in and creates a project over native gRPC
// (stubs generated from proto/ by `npm run gen:polyglot`), then reads the
// same project over REST and checks that both agree. It exits 1 on any failure.
//
//	go run . -addr localhost:8080
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	authv1 "example.com/mesh/examples/go/gen/mesh/auth/v1"
	projectv1 "example.com/mesh/examples/go/gen/mesh/project/v1"
)

// The stubs in gen/ are generated from proto/ and not committed.
//go:generate npm --prefix ../.. run gen:polyglot -- go

type options struct {
	addr     string
	email    string
	password string
	project  string
	timeout  time.Duration
}

func main() {
	opts := options{}
	flag.StringVar(&opts.addr, "addr", envOr("MESH_GATEWAY", "localhost:8080"), "gateway `host:port` (env MESH_GATEWAY)")
	flag.StringVar(&opts.email, "email", "", "email to register (default: a new random address)")
	flag.StringVar(&opts.password, "password", "polyglot-go-1", "password to register (8-128 characters, a letter and a digit)")
	flag.StringVar(&opts.project, "project", "go example", "name of the project to create")
	flag.DurationVar(&opts.timeout, "timeout", 10*time.Second, "deadline of each call")
	flag.Parse()
	if _, _, err := net.SplitHostPort(opts.addr); err != nil {
		fail(fmt.Errorf("-addr %q is not host:port: %w", opts.addr, err))
	}
	if opts.email == "" {
		opts.email = "go-" + randomHex(6) + "@example.com"
	}
	if err := run(opts); err != nil {
		fail(err)
	}
}

func run(opts options) error {
	// The gateway speaks cleartext HTTP/2 (h2c) on its one port; put TLS in front of it in production.
	conn, err := grpc.NewClient(opts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("gateway %s: %w", opts.addr, err)
	}
	defer conn.Close()
	auth := authv1.NewAuthServiceClient(conn)
	projects := projectv1.NewProjectServiceClient(conn)
	fmt.Printf("gateway %s (native gRPC and REST)\n", opts.addr)

	var md rpcMetadata
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	reg, err := auth.Register(ctx, &authv1.RegisterRequest{Email: opts.email, Password: opts.password, Name: "Go example"}, md.options()...)
	cancel()
	if err != nil {
		return rpcFailure("Register", err, md)
	}
	fmt.Printf("registered %s (user %s) over gRPC\n", reg.GetUser().GetEmail(), reg.GetUser().GetId())

	ctx, cancel = context.WithTimeout(context.Background(), opts.timeout)
	login, err := auth.Login(ctx, &authv1.LoginRequest{Email: opts.email, Password: opts.password}, md.options()...)
	cancel()
	if err != nil {
		return rpcFailure("Login", err, md)
	}
	fmt.Printf("logged in: %s token, expires in %d s\n", login.GetTokenType(), login.GetExpiresIn())

	// The access token goes in the `authorization` metadata, as the REST API's Authorization header.
	ctx, cancel = context.WithTimeout(context.Background(), opts.timeout)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.GetAccessToken())
	created, err := projects.CreateProject(ctx, &projectv1.CreateProjectRequest{Name: opts.project, Description: "created by examples/go"}, md.options()...)
	cancel()
	if err != nil {
		return rpcFailure("CreateProject", err, md)
	}
	project := created.GetProject()
	fmt.Printf("created project %s (%q) over gRPC, request id %s\n", project.GetId(), project.GetName(), md.requestID())

	fetched, err := getProjectREST(opts.addr, login.GetAccessToken(), project.GetId(), opts.timeout)
	if err != nil {
		return err
	}
	if !proto.Equal(project, fetched) {
		return fmt.Errorf("REST answered another project than gRPC created:\n  gRPC: %s\n  REST: %s",
			protojson.Format(project), protojson.Format(fetched))
	}
	fmt.Printf("read project %s over REST: matches what gRPC created\n", project.GetId())
	return nil
}

// rpcMetadata receives the header and trailer metadata of the last call made with its options.
type rpcMetadata struct{ header, trailer metadata.MD }

func (m *rpcMetadata) options() []grpc.CallOption {
	m.header, m.trailer = nil, nil
	return []grpc.CallOption{grpc.Header(&m.header), grpc.Trailer(&m.trailer)}
}

// requestID is the gateway's x-request-id of the call (it finds the call's log
// lines and trace), or "" when the call did not reach the gateway.
func (m *rpcMetadata) requestID() string {
	for _, md := range []metadata.MD{m.header, m.trailer} {
		if v := md.Get("x-request-id"); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error since Go 1.24)
	return hex.EncodeToString(b)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mesh-client:", err)
	os.Exit(1)
}
