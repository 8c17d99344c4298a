// compose-check: the static checks of docker-compose.kafka.yml that need Docker's own code.
//
//	compose-check load FILE   validates FILE against the Compose Specification's JSON schema
//	                          (the one compose-go embeds, as `docker compose` does), then loads
//	                          it the way `docker compose config` does (interpolation from the
//	                          environment, normalisation, consistency checks such as depends_on
//	                          naming real services) and prints the resolved project as JSON.
//	compose-check yaml FILE   prints a YAML file (Prometheus, Grafana provisioning) as JSON, so
//	                          the Rust test needs no YAML parser of its own.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/schema"
	"go.yaml.in/yaml/v3"
)

func main() {
	if len(os.Args) != 3 {
		fail(fmt.Errorf("usage: compose-check load|yaml FILE"))
	}
	var out any
	var err error
	switch os.Args[1] {
	case "load":
		out, err = load(os.Args[2])
	case "yaml":
		out, err = readYAML(os.Args[2])
	default:
		err = fmt.Errorf("unknown mode %q (load or yaml)", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}

func readYAML(path string) (map[string]any, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

func load(path string) (any, error) {
	// The schema check on the file as written, before interpolation: the loader below checks
	// again after it, and this one names the schema in its error.
	raw, err := readYAML(path)
	if err != nil {
		return nil, err
	}
	if err := schema.Validate(raw); err != nil {
		return nil, fmt.Errorf("%s does not validate against the Compose Specification schema: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	options, err := cli.NewProjectOptions([]string{abs},
		cli.WithName("manifold"),
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithOsEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return options.LoadProject(context.Background())
}
