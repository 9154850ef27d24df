// Command taxline is the tax help desk's contact-centre gateway: SIP and
// web-chat gateways, one ACD with the bureau's timing rules, and an
// embedded event store. See README.md and docs/ for the whole surface.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: taxline <command> [flags]

commands:
  serve          run the gateway (embedded demo config without -config)
  check-config   validate a config file: taxline check-config FILE
  report         the monthly report: taxline report monthly -month YYYY-MM
  score          Art. 23 quarterly scoring: taxline score [-standard N] < scores.csv
  fee            Art. 25–27 quarterly fee: taxline fee -contract AMOUNT -complaints N [-failed]
  simulate       a day of synthetic traffic through the router on virtual time (what-if)
  export         hand-over export with checksums (D2): taxline export [-data DIR] [-o FILE]
  purge          retention (S3): taxline purge [-data DIR] [-before YYYY-MM-DD | -all]
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"serve"}
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "report":
		return report(args[1:], stdout, stderr)
	case "score":
		return score(args[1:], stdin, stdout, stderr)
	case "fee":
		return fee(args[1:], stdout, stderr)
	case "simulate":
		return simulate(args[1:], stdout, stderr)
	case "export":
		return export(args[1:], stdout, stderr)
	case "purge":
		return purge(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "taxline: unknown command %q\n%s", args[0], usage)
	return 2
}
