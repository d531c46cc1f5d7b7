package main

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails" // registers google.rpc.BadRequest & co. for status.Details
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// rpcFailure describes a failed call as its user needs it: the RPC, the gRPC
// status code and message, the google.rpc details the mesh attaches (e.g.
// BadRequest field violations) and the gateway's request id.
func rpcFailure(rpc string, err error, md rpcMetadata) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s failed: %w", rpc, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed: gRPC status %s (%d): %s", rpc, code.Code(st.Code()), st.Code(), st.Message())
	for _, d := range st.Details() {
		if m, isMessage := d.(proto.Message); isMessage {
			j, _ := protojson.Marshal(m) // a decoded detail always marshals
			fmt.Fprintf(&b, "\n  detail %s: %s", m.ProtoReflect().Descriptor().FullName(), j)
		} else {
			fmt.Fprintf(&b, "\n  detail (not decoded): %v", d)
		}
	}
	if id := md.requestID(); id != "" {
		fmt.Fprintf(&b, "\n  request id: %s", id)
	}
	return errors.New(b.String())
}
