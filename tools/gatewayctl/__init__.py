"""`gatewayctl`: what developers and operators run, never deployed.

The Lambda functions ship `src/` only (`CodeUri: src/` in template.yaml); this package lives beside
it, in `tools/`, and is installed with the dev extras (`pip install -e '.[dev]'`). It imports
`handler`, never the other way round (import-linter checks it).

    python -m gatewayctl config validate|push FILE...   project config files -> SSM
    python -m gatewayctl keys create|list|revoke        API keys in the table
    python -m gatewayctl outputs [KEY] --stack NAME     a deployed stack's outputs
    python -m gatewayctl env --local | --stack NAME     the env file of `sam local invoke`
    python -m gatewayctl dev                            `make dev`: the gateway on 127.0.0.1
    python -m gatewayctl invoke EVENT.json...           `make invoke`: a Lambda handler on an event
    python -m gatewayctl batch FILE.jsonl               `make batch`: a batch file, end to end
"""
