#!/usr/bin/env bash
# Downloads the official data files into DIR (default data/) and checks their
# sha256; files already present with the right hash are kept.
set -eu
dir=${1:-data}
fetch() { # url dest sha256
  local url=$1 dest=$2 sum=$3
  if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then echo "ok: $dest"; return; fi
  mkdir -p "$(dirname "$dest")"
  curl -fL --retry 3 -o "$dest.part" "$url" || { echo "fetch-data: download failed: $url" >&2; exit 1; }
  if ! echo "$sum  $dest.part" | sha256sum -c --status; then
    echo "fetch-data: sha256 mismatch for $url (wanted $sum)" >&2; rm -f "$dest.part"; exit 1
  fi
  mv "$dest.part" "$dest"; echo "fetched: $dest"
}
# HumanEval+ v0.1.10 (evalplus/humanevalplus_release, commit 200defce "bump to v0.1.10").
fetch https://github.com/evalplus/humanevalplus_release/raw/200defce9e3429d28ca215b6dd061c0f7f31c18b/HumanEvalPlus.jsonl.gz \
      "$dir/humanevalplus/HumanEvalPlus.jsonl.gz" 272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101
# GPT-NeoX-20B tokenizer as vendored by BlinkDL/RWKV-LM (RWKV-v4/20B_tokenizer.json).
fetch https://raw.githubusercontent.com/BlinkDL/RWKV-LM/524481d5099b38d9bc8ef1e89209161b86c8011b/RWKV-v4/20B_tokenizer.json \
      "$dir/tokenizer/20B_tokenizer.json" 56ac4821e129d2c520fdaba60abd920fa852ada51b45c0dd52bbb6bd8c985ade
