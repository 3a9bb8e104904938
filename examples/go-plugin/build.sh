#!/bin/sh
# Builds the example Go integration offline, from Debian's packaged Go sources only:
#   apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev \
#     golang-github-golang-protobuf-1-5-dev \
#     golang-google-protobuf-dev protobuf-compiler protoc-gen-go protoc-gen-go-grpc
#   examples/go-plugin/build.sh OUT_DIR     # writes OUT_DIR/bin/go-example (an --integrations-dir)
# Debian ships the sources under /usr/share/gocode in GOPATH layout (no module proxy, no go.sum), so the build
# runs in GOPATH mode (GO111MODULE=off) with a private GOPATH in front of /usr/share/gocode. The Go code of
# the wire contract is generated from proto/pinpoint.proto on every build, as package pinpoint.example/pinpointv1;
# CGO_ENABLED=0: a pure-Go binary, no C compiler needed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out/bin"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/pinpoint.example/pinpointv1" "$work/src/go-example"
protoc -I "$repo/proto" \
  --go_out="$work/src/pinpoint.example/pinpointv1" --go_opt=paths=source_relative --go_opt=Mpinpoint.proto=pinpoint.example/pinpointv1 \
  --go-grpc_out="$work/src/pinpoint.example/pinpointv1" --go-grpc_opt=paths=source_relative --go-grpc_opt=Mpinpoint.proto=pinpoint.example/pinpointv1 \
  pinpoint.proto
cp "$here/main.go" "$work/src/go-example/"
cd "$work/src/go-example"
CGO_ENABLED=0 GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOFLAGS= GOPROXY=off \
  go build -o "$out/bin/go-example" .
echo "$out/bin/go-example"
