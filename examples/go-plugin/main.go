// go-example: a pinpoint-agent integration written in Go on hashicorp/go-plugin (1.0.1, as Debian ships it).
//
// It serves the Integration service of proto/pinpoint.proto and reaches the agent's callbacks the way Go
// plugins do: through go-plugin's broker, dialing the Agent service at the start of every call (the broker id
// the agent offered for that call, in CallConfig.agent_service_id; Init's id for an agent that offers none)
// and closing the connection when the call ends. Each id can be dialed once, within 5 s of the agent's offer.
//
// Export sends `repos` (config, default 3) sourcecode.Repo objects in one model session; the session's token
// is the number of repos exported, so the next (incremental) export sends only repos added since. Logs are
// hclog JSON lines on stderr. Everything but Init and Export answers gRPC UNIMPLEMENTED ("not supported").
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "pinpoint.example/pinpointv1"
)

var logger = hclog.New(&hclog.LoggerOptions{
	Name: "go-example", JSONFormat: true, Output: os.Stderr, Level: hclog.Debug,
})

type integration struct {
	pb.UnimplementedIntegrationServer
	broker *plugin.GRPCBroker
	initID uint32
}

func (s *integration) Init(ctx context.Context, req *pb.InitRequest) (*pb.InitResponse, error) {
	s.initID = req.AgentServiceId
	logger.Debug("init", "display_name", req.DisplayName)
	return &pb.InitResponse{Name: "go-example"}, nil
}

type config struct {
	Repos int  `json:"repos"`
	Panic bool `json:"panic"`
}

func (s *integration) Export(ctx context.Context, req *pb.ExportRequest) (*pb.ExportResponse, error) {
	var cfg config
	cfg.Repos = 3
	if raw := req.Config.GetIntegration().GetConfigJson(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return &pb.ExportResponse{Error: &pb.Error{Kind: pb.Error_CONFIG, Message: "bad config: " + err.Error()}}, nil
		}
	}
	if cfg.Panic {
		var repos []string
		_ = repos[cfg.Repos] // a real Go panic: index out of range
	}
	id := req.Config.GetAgentServiceId()
	if id == 0 {
		id = s.initID
	}
	conn, err := s.broker.Dial(id)
	if err != nil {
		logger.Error("cannot reach the agent", "broker_id", id, "error", err.Error())
		return nil, err
	}
	defer conn.Close()
	agent := pb.NewAgentClient(conn)

	session, err := agent.SessionStart(ctx, &pb.SessionStartRequest{Name: "sourcecode.Repo"})
	if err != nil {
		return nil, err
	}
	since := 0
	if session.LastProcessed != "" {
		if since, err = strconv.Atoi(session.LastProcessed); err != nil {
			since = 0
		}
	}
	logger.Info("export started", "since", since, "incremental", session.LastProcessed != "")
	customer := req.Config.GetCustomerId()
	var objects [][]byte
	var projects []*pb.ExportProject
	for i := 1; i <= cfg.Repos; i++ {
		refID := strconv.Itoa(i)
		name := fmt.Sprintf("example/repo%d", i)
		projects = append(projects, &pb.ExportProject{Id: "go-example-repo-" + refID, RefId: refID, Name: name})
		if i <= since {
			continue
		}
		obj := map[string]interface{}{
			"id": "go-example-repo-" + refID, "ref_id": refID, "ref_type": "go-example", "customer_id": customer,
			"name": name, "active": true,
		}
		body, _ := json.Marshal(obj)
		h := fnv.New64a()
		h.Write(body)
		obj["hashcode"] = fmt.Sprintf("%016x", h.Sum64())
		body, _ = json.Marshal(obj)
		objects = append(objects, body)
	}
	if len(objects) > 0 {
		if _, err := agent.SendExported(ctx, &pb.SendExportedRequest{SessionId: session.SessionId, Objects: objects}); err != nil {
			return nil, err
		}
	}
	if len(objects) < 2 {
		logger.Warn("nothing much to export", "objects", len(objects))
	}
	if _, err := agent.SessionDone(ctx, &pb.SessionDoneRequest{SessionId: session.SessionId, LastProcessed: strconv.Itoa(cfg.Repos)}); err != nil {
		return nil, err
	}
	logger.Info("export finished", "objects", len(objects))
	return &pb.ExportResponse{Projects: projects}, nil
}

type integrationPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (p *integrationPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterIntegrationServer(s, &integration{broker: broker})
	return nil
}

func (p *integrationPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("go-example is a plugin, not a host")
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion: 1, MagicCookieKey: "PLUGIN", MagicCookieValue: "pinpoint-agent-plugin",
		},
		Plugins:    map[string]plugin.Plugin{"integration": &integrationPlugin{}},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
