module github.com/dataport/dataport/bench/go-greeter

go 1.26.0

require (
	github.com/dataport/dataport/clients/go v0.0.0
	google.golang.org/grpc v1.85.0
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// The generated helloworld package of the Go client, built from proto/compat
// by clients/go/generate.
replace github.com/dataport/dataport/clients/go => ../../clients/go
