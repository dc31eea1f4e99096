// Command compose-config loads a Compose file exactly as `docker compose config` does
// (compose-go: Compose Specification JSON schema, interpolation from env files and the
// environment, profiles, extends/anchors, normalization) and prints the resolved project.
// It exists because this project's CI machines have no Docker engine and no compose
// plugin; scripts/tools/compose.sh builds it from the Go module proxy.
//
//	compose-config -f docker/docker-compose.yml [--env-file FILE]... [--profile P]...
//	               [--scale SERVICE=N]... [--format yaml|json] [--project-name NAME]
//
// --scale applies the checks `docker compose up --scale` makes before creating
// containers that a static file can fail: a scaled service must not set container_name,
// and must not publish a fixed host port (every replica would bind the same one).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "compose-config: error: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var files, envFiles, profiles, scales multi
	format := flag.String("format", "yaml", "output format: yaml or json")
	name := flag.String("project-name", "lakehouse", "project name")
	flag.Var(&files, "f", "compose file (repeatable)")
	flag.Var(&envFiles, "env-file", "env file for interpolation (repeatable)")
	flag.Var(&profiles, "profile", "profile to enable (repeatable; '*' enables all)")
	flag.Var(&scales, "scale", "SERVICE=N: check that SERVICE can run N replicas")
	flag.Parse()
	if len(files) == 0 {
		return errors.New("no compose file: use -f FILE")
	}
	if flag.NArg() > 0 && !(flag.NArg() == 1 && flag.Arg(0) == "config") {
		return fmt.Errorf("unexpected arguments %v (only 'config')", flag.Args())
	}

	options, err := cli.NewProjectOptions(files,
		cli.WithName(*name),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	for _, spec := range scales {
		if err := checkScale(project, spec); err != nil {
			return err
		}
	}
	var out []byte
	switch *format {
	case "yaml":
		out, err = project.MarshalYAML()
	case "json":
		out, err = project.MarshalJSON()
	default:
		return fmt.Errorf("unknown --format %q (yaml or json)", *format)
	}
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

func checkScale(project *types.Project, spec string) error {
	svcName, count, ok := strings.Cut(spec, "=")
	n, convErr := strconv.Atoi(count)
	if !ok || convErr != nil || n < 0 {
		return fmt.Errorf("invalid --scale %q: use SERVICE=N", spec)
	}
	service, err := project.GetService(svcName)
	if err != nil {
		return fmt.Errorf("--scale %s: %w", spec, err)
	}
	if n <= 1 {
		return nil
	}
	if service.ContainerName != "" {
		return fmt.Errorf("service %q cannot be scaled to %d: it sets container_name %q", svcName, n, service.ContainerName)
	}
	for _, port := range service.Ports {
		if port.Published != "" && !strings.Contains(port.Published, "-") {
			return fmt.Errorf("service %q cannot be scaled to %d: it publishes fixed host port %s (container port %d); publish the container port only", svcName, n, port.Published, port.Target)
		}
	}
	return nil
}
