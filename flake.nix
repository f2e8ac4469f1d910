{
  description = "Pipelines for the gremlin cluster: the GitOps tree and pipectl for stonks-oracle";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      pyproject = builtins.fromTOML (builtins.readFile ./pyproject.toml);
      version = pyproject.project.version;

      # Everything a check needs from this repository (not .git, not build output).
      source = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./pyproject.toml
          ./pipeline.yaml
          ./tools
          ./tests
          ./checks
          ./gitops
          ./apps
          ./docs
          ./.github
          ./flake.nix
          ./runmefirst.sh
          ./runmelast.sh
        ];
      };

      perSystem =
        pkgs:
        let
          python = pkgs.python3;
          py = python.pkgs;

          # The Python library; `pipectl` below is the same code as an application.
          pipectlLib = py.buildPythonPackage {
            pname = "pipectl";
            inherit version;
            pyproject = true;
            src = lib.fileset.toSource {
              root = ./.;
              fileset = lib.fileset.unions [
                ./pyproject.toml
                ./tools
              ];
            };
            build-system = [ py.setuptools ];
            dependencies = with py; [
              click
              ruamel-yaml
              holidays
              python-dateutil
              bcrypt
              kubernetes
              tzdata
              pyyaml
            ];
            # The test suite needs the whole repository; the flake's checks run it.
            doCheck = false;
            pythonImportsCheck = [ "pipectl" ];
            meta.mainProgram = "pipectl";
          };
          pipectl = py.toPythonApplication pipectlLib;

          # Core Kubernetes JSON schemas for the offline manifest check (same version as CI's pip).
          kubernetesValidate = py.buildPythonPackage rec {
            pname = "kubernetes-validate";
            version = "1.37.0";
            pyproject = true;
            src = py.fetchPypi {
              pname = "kubernetes_validate";
              inherit version;
              hash = "sha256-CaJiCdPjLZesE+b4FZfAkxb+b3RzzdS9jbRAdZMN41c=";
            };
            build-system = [ py.setuptools ];
            dependencies = with py; [
              importlib-resources
              jsonschema
              packaging
              pyyaml
              referencing
              typing-extensions
            ];
            doCheck = false;
            pythonImportsCheck = [ "kubernetes_validate" ];
          };

          devPython = python.withPackages (ps: [
            pipectlLib
            ps.pytest
            ps.pytest-mock
            ps.jsonschema
            kubernetesValidate
            ps.playwright
            ps.exchange-calendars # benchmark and cross-check reference
          ]);

          # Pinned upstream CRDs and Kargo step schemas, fetched by URL + hash and laid out like
          # the CI mirror (../shared/upstream), with its SHA256SUMS.
          upstreamFiles = import ./checks/upstream.nix;
          upstreamSums = pkgs.writeText "SHA256SUMS" (
            lib.concatMapStrings (f: "${f.sha256}  ./${f.path}\n") upstreamFiles
          );
          upstream = pkgs.runCommand "pipelines-upstream" { } (
            ''
              mkdir -p "$out"
              cp ${upstreamSums} "$out/SHA256SUMS"
            ''
            + lib.concatMapStrings (f: ''
              install -D -m 0444 ${pkgs.fetchurl { inherit (f) url sha256; }} "$out/${f.path}"
            '') upstreamFiles
          );

          # A check runs one script from checks/ in a writable copy of the repository,
          # exactly as .ci/run runs it.
          mkCheck =
            name: inputs:
            pkgs.runCommand "pipelines-check-${name}"
              {
                nativeBuildInputs = [
                  devPython
                  pkgs.git
                  pkgs.bash
                ]
                ++ inputs;
                PIPECTL_UPSTREAM_DIR = upstream;
                PIPECTL_CHROMIUM = lib.getExe pkgs.chromium;
              }
              ''
                cp -r ${source} repo
                chmod -R u+w repo
                cd repo
                export HOME="$TMPDIR/home"
                mkdir -p "$HOME"
                # The sandbox has no /usr/bin/env, and CI runs in a git clone: make it so here.
                patchShebangs --build .
                git init -q -b main
                git add -A
                git -c user.name=flake-check -c user.email=flake-check@localhost \
                  commit -q -m "flake source"
                bash checks/${name}.sh
                touch "$out"
              '';

          # runmefirst.sh / runmelast.sh from this flake's source, with pinned tools on PATH.
          scriptApp =
            name: script:
            pkgs.writeShellApplication {
              inherit name;
              runtimeInputs = [
                pipectl # the operator's audit/status tool beside the scripts
                pkgs.kubectl
                pkgs.kubernetes-helm
                pkgs.curl
                pkgs.coreutils
                pkgs.gnused
                pkgs.gnugrep
                pkgs.gnutar
                pkgs.diffutils # `kubectl diff` needs diff: without it every run re-applies
                (python.withPackages (ps: [ ps.bcrypt ])) # bcrypt hashes for Kargo and the console
              ];
              text = ''
                export PIPELINES_ROOT=${self}
                exec ${lib.getExe pkgs.bash} "$PIPELINES_ROOT/${script}" "$@"
              '';
            };
        in
        {
          packages = {
            default = pipectl;
            inherit pipectl upstream;
            bootstrap = scriptApp "pipelines-bootstrap" "runmefirst.sh";
            teardown = scriptApp "pipelines-teardown" "runmelast.sh";
            # The pipeline console image (see gitops/console/).
            image = pkgs.dockerTools.buildLayeredImage {
              name = "ghcr.io/celesrenata/pipelines/pipectl";
              tag = version;
              contents = [
                pipectl
                pkgs.git
                pkgs.cacert
              ];
              extraCommands = ''
                mkdir -p tmp
                chmod 1777 tmp
              '';
              config = {
                User = "10001:10001";
                Entrypoint = [ (lib.getExe pipectl) ];
                Env = [
                  "HOME=/tmp"
                  "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
                  "GIT_SSL_CAINFO=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
                ];
                ExposedPorts."8080/tcp" = { };
              };
            };
          };

          checks = {
            nix-parse = mkCheck "nix-parse" [ pkgs.nix ];
            lint = mkCheck "lint" [ pkgs.ruff ];
            shellcheck = mkCheck "shellcheck" [ pkgs.shellcheck ];
            actionlint = mkCheck "actionlint" [
              pkgs.actionlint
              pkgs.shellcheck
            ];
            manifests = mkCheck "manifests" [ pkgs.kubeconform ];
            tests = mkCheck "tests" [
              pkgs.kubeconform
              pkgs.actionlint
              pkgs.shellcheck
              pkgs.chromium
              pkgs.ruff
              pkgs.curl
            ];
          };

          devShells.default = pkgs.mkShell {
            packages = [
              devPython
              pkgs.ruff
              pkgs.kubectl
              pkgs.kubernetes-helm
              pkgs.kubeconform
              pkgs.actionlint
              pkgs.shellcheck
              pkgs.git
            ];
            PIPECTL_UPSTREAM_DIR = upstream;
            shellHook = ''
              export PYTHONPATH="$PWD/tools''${PYTHONPATH:+:$PYTHONPATH}"
            '';
          };

          formatter = pkgs.nixfmt-tree;
        };

      outputsBySystem = forAllSystems perSystem;
      pick = attr: lib.mapAttrs (_: outs: outs.${attr}) outputsBySystem;
    in
    {
      packages = pick "packages";
      checks = pick "checks";
      devShells = pick "devShells";
      formatter = pick "formatter";
      apps = lib.mapAttrs (
        _: outs:
        let
          app = pkg: description: {
            type = "app";
            program = lib.getExe pkg;
            meta.description = description;
          };
        in
        {
          default = app outs.packages.pipectl "pipectl: gate, promote, audit, console";
          pipectl = app outs.packages.pipectl "pipectl: gate, promote, audit, console";
          bootstrap = app outs.packages.bootstrap "Install the pipeline (runmefirst.sh)";
          teardown = app outs.packages.teardown "Remove the pipeline, keep its data (runmelast.sh)";
        }
      ) outputsBySystem;
    };
}
