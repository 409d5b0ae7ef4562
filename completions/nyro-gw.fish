# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nyro_gw_global_optspecs
    string join \n log-format= h/help V/version
end

function __fish_nyro_gw_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nyro_gw_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nyro_gw_using_subcommand
    set -l cmd (__fish_nyro_gw_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -l log-format -d 'Log format: one JSON object per line (default), or human-readable' -r -f -a "json\t'One JSON object per line: for log shippers'
pretty\t'Coloured, aligned text: for people'"
complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -s V -l version -d 'Print version'
complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -f -a "serve" -d 'Serve the route table until SIGTERM/SIGINT, then drain'
complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -f -a "check-config" -d 'Validate a config without serving: every problem with file:line:col'
complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -f -a "token" -d 'Inspect or mint JWTs'
complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -f -a "schema" -d 'Print the JSON Schema of gateway.toml (for editors: Taplo, Even Better TOML); the repository commits it as gateway.schema.json'
complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -f -a "generate" -d 'Write the man pages and shell completions (for maintainers)'
complete -c nyro-gw -n "__fish_nyro_gw_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand serve" -s c -l config -d 'Config file [default: $NYRO_GW_CONFIG, else ./gateway.toml]' -r -F
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand serve" -l log-format -d 'Log format: one JSON object per line (default), or human-readable' -r -f -a "json\t'One JSON object per line: for log shippers'
pretty\t'Coloured, aligned text: for people'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand serve" -l dev -d 'First run on a laptop: an ephemeral HMAC secret when none is set, the built-in gateway.toml when no file exists, pretty logs, and a ready curl line with a freshly minted token. Never for production'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand serve" -s V -l version -d 'Print version'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand check-config" -s c -l config -d 'Config file, as `serve` and `token` take it (same as PATH)' -r -F
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand check-config" -l format -d 'Output format; json prints an array of {severity, file, line, column, message} to stdout' -r -f -a "text\t'For people'
json\t'For programs'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand check-config" -l log-format -d 'Log format: one JSON object per line (default), or human-readable' -r -f -a "json\t'One JSON object per line: for log shippers'
pretty\t'Coloured, aligned text: for people'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand check-config" -l allow-missing-env -d 'For CI without the production environment: an unset ${VAR} is a warning naming it, checked as a placeholder of the type its key expects (inside a longer string: that value\'s checks are skipped); an unreadable secret_file, TLS cert or key, or ca_file is a warning. Nothing else is relaxed'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand check-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand check-config" -s V -l version -d 'Print version'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and not __fish_seen_subcommand_from inspect mint help" -l log-format -d 'Log format: one JSON object per line (default), or human-readable' -r -f -a "json\t'One JSON object per line: for log shippers'
pretty\t'Coloured, aligned text: for people'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and not __fish_seen_subcommand_from inspect mint help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and not __fish_seen_subcommand_from inspect mint help" -s V -l version -d 'Print version'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and not __fish_seen_subcommand_from inspect mint help" -f -a "inspect" -d 'Decode a token, verify it against the config\'s keys, and say which routes accept it and what each would inject. Exit 0 when a route with auth required or optional would forward it, 1 otherwise, 2 for usage'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and not __fish_seen_subcommand_from inspect mint help" -f -a "mint" -d 'Sign a token with the config\'s HMAC secret, or with a PEM private key (--key) for a JWKS setup (development and tests)'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and not __fish_seen_subcommand_from inspect mint help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from inspect" -s c -l config -d 'Config whose keys and routes to check against; without one (and no $NYRO_GW_CONFIG or ./gateway.toml) the token is only decoded' -r -F
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from inspect" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For programs'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from inspect" -l log-format -d 'Log format: one JSON object per line (default), or human-readable' -r -f -a "json\t'One JSON object per line: for log shippers'
pretty\t'Coloured, aligned text: for people'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from inspect" -s V -l version -d 'Print version'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from mint" -l claims -d 'Claims as a JSON object, e.g. \'{"sub":"u1","app_metadata":{"company_id":"c1"}}\'. `aud` (first configured audience), `iss` (the configured issuer, if any), `iat` and `exp` are filled unless given' -r
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from mint" -l ttl -d 'Lifetime of the token, e.g. 15m, 1h, 7d' -r
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from mint" -s c -l config -d 'Config whose HMAC secret signs the token. With --key it is optional and only supplies the `aud` and `iss` defaults' -r -F
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from mint" -l key -d 'Sign with this PEM private key instead of the HMAC secret; the algorithm follows the key\'s type: EC P-256 -> ES256, EC P-384 -> ES384, RSA -> RS256, Ed25519 -> EdDSA. For testing a JWKS setup' -r -F
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from mint" -l kid -d 'The `kid` header: the id under which the JWKS publishes the public key. Only with --key' -r
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from mint" -l log-format -d 'Log format: one JSON object per line (default), or human-readable' -r -f -a "json\t'One JSON object per line: for log shippers'
pretty\t'Coloured, aligned text: for people'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from mint" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from mint" -s V -l version -d 'Print version'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Decode a token, verify it against the config\'s keys, and say which routes accept it and what each would inject. Exit 0 when a route with auth required or optional would forward it, 1 otherwise, 2 for usage'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "mint" -d 'Sign a token with the config\'s HMAC secret, or with a PEM private key (--key) for a JWKS setup (development and tests)'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand schema" -l log-format -d 'Log format: one JSON object per line (default), or human-readable' -r -f -a "json\t'One JSON object per line: for log shippers'
pretty\t'Coloured, aligned text: for people'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand schema" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand schema" -s V -l version -d 'Print version'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand generate" -l out -d 'Directory that holds `man/` and `completions/`' -r -F
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand generate" -l log-format -d 'Log format: one JSON object per line (default), or human-readable' -r -f -a "json\t'One JSON object per line: for log shippers'
pretty\t'Coloured, aligned text: for people'"
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand generate" -s V -l version -d 'Print version'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand help; and not __fish_seen_subcommand_from serve check-config token schema generate help" -f -a "serve" -d 'Serve the route table until SIGTERM/SIGINT, then drain'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand help; and not __fish_seen_subcommand_from serve check-config token schema generate help" -f -a "check-config" -d 'Validate a config without serving: every problem with file:line:col'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand help; and not __fish_seen_subcommand_from serve check-config token schema generate help" -f -a "token" -d 'Inspect or mint JWTs'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand help; and not __fish_seen_subcommand_from serve check-config token schema generate help" -f -a "schema" -d 'Print the JSON Schema of gateway.toml (for editors: Taplo, Even Better TOML); the repository commits it as gateway.schema.json'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand help; and not __fish_seen_subcommand_from serve check-config token schema generate help" -f -a "generate" -d 'Write the man pages and shell completions (for maintainers)'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand help; and not __fish_seen_subcommand_from serve check-config token schema generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "inspect" -d 'Decode a token, verify it against the config\'s keys, and say which routes accept it and what each would inject. Exit 0 when a route with auth required or optional would forward it, 1 otherwise, 2 for usage'
complete -c nyro-gw -n "__fish_nyro_gw_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "mint" -d 'Sign a token with the config\'s HMAC secret, or with a PEM private key (--key) for a JWKS setup (development and tests)'
