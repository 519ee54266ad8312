import { describe, expect, it } from 'vitest';
import {
  baseRefusal,
  buildArgs,
  checkDockerfile,
  finalBase,
  hints,
  instructionText,
  instructions,
  ownBases,
  parseDockerfile,
  substitute,
  userImageName,
  workspacePath,
} from '../../src/core/dockerfile.js';
import { DockerIgnore } from '../../src/core/dockerignore.js';
import { parseCommand } from '../../src/core/grammar.js';

const ALLOWED = ['pytorch/pytorch:*', 'nvcr.io/nvidia/pytorch:*'];
const check = (text: string, args: Record<string, string> = {}) => checkDockerfile(parseDockerfile(text, args), 'alice', ALLOWED, args);

describe('Dockerfile reading', () => {
  it('joins continuations, skips comments, honours the escape directive', () => {
    expect(instructions('# syntax\nFROM a:1\n\nRUN echo a \\\n  # inside\n  && echo b\n')).toEqual([
      { line: 2, keyword: 'FROM', args: 'a:1' },
      { line: 4, keyword: 'RUN', args: 'echo a && echo b' },
    ]);
    expect(instructions('# escape=`\nFROM a:1\nRUN dir c:\\ `\n  && x\n').map((i) => i.args)).toEqual(['a:1', 'dir c:\\ && x']);
  });

  it('substitutes the forms Docker knows and refuses the rest', () => {
    const vars = new Map([
      ['A', 'x'],
      ['E', ''],
    ]);
    expect(substitute('$A ${A} ${E:-d} ${A:-d} ${A:+p} ${E:+p} \\$A', vars, 1)).toBe('x x d x p  $A');
    expect(() => substitute('${A/x/y}', vars, 3)).toThrow(/line 3: cannot read/);
  });

  it('finds every stage base, stage names, COPY --from images, and the final base', () => {
    const f = parseDockerfile(
      'ARG TAG=2.3\nFROM pytorch/pytorch:${TAG} AS Build\nRUN make\nFROM build AS test\nFROM scratch\nCOPY --from=build /a /a\nCOPY --from=1 /b /b\nCOPY --from=gpubot/alice/x:2 /c /c\n',
    );
    expect(f.stages.map((s) => [s.name, s.base, s.baseIsStage])).toEqual([
      ['build', 'pytorch/pytorch:2.3', false],
      ['test', 'build', true],
      [undefined, 'scratch', false],
    ]);
    expect(f.copiedFrom).toEqual([{ line: 8, image: 'gpubot/alice/x:2' }]);
    expect(finalBase(f)).toBe('scratch');
    expect(finalBase(parseDockerfile('FROM pytorch/pytorch:1 AS a\nFROM a AS b\nFROM b\n'))).toBe('pytorch/pytorch:1');
    expect(ownBases(f, 'alice')).toEqual(['gpubot/alice/x:2']);
  });

  it('refuses bases off the allow-list however they are spelled, and other users’ images', () => {
    expect(check('FROM pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime\nFROM gpubot/alice/mine:3\nFROM scratch\n')).toEqual([]);
    expect(check('FROM ubuntu:22.04')).toEqual(['FROM ubuntu:22.04 is not on the allow-list (pytorch/pytorch:*, nvcr.io/nvidia/pytorch:*)']);
    expect(check('FROM pytorch/pytorch')).toEqual([]); // means :latest, which the glob allows
    expect(checkDockerfile(parseDockerfile('FROM ubuntu'), 'alice', ['ubuntu:22.04'], {})).toEqual(['FROM ubuntu is not on the allow-list (ubuntu:22.04)']);
    expect(check('ARG B=pytorch/pytorch:1\nFROM $B', { B: 'evil/x:1' })[0]).toMatch(/^FROM evil\/x:1 is not/);
    expect(check('ARG B\nFROM ${B:-pytorch/pytorch:1}')).toEqual([]);
    expect(check('FROM gpubot/bob/x:1')).toEqual(['FROM gpubot/bob/x:1 is not one of your images']);
    expect(check('FROM docker.io/gpubot/bob/x:1')[0]).toMatch(/not one of your images/);
    expect(check('FROM pytorch/pytorch:1\nCOPY --from=alpine /x /x')[0]).toMatch(/^line 2: COPY --from alpine is not on the allow-list/);
    expect(check('FROM pytorch/pytorch:1\nRUN x', { NOPE: '1' })).toEqual(['--build-arg NOPE: the Dockerfile declares no ARG NOPE']);
    expect(check('FROM pytorch/pytorch:1\nRUN x', { HTTP_PROXY: 'http://p' })).toEqual([]);
    expect(baseRefusal('Bad Ref', 'alice', ALLOWED)).toMatch(/is not an image reference/);
  });

  it('rejects what it cannot check', () => {
    expect(() => parseDockerfile('RUN x\nFROM a')).toThrow(/line 1: RUN before the first FROM/);
    expect(() => parseDockerfile('# nothing')).toThrow(/no FROM/);
    expect(() => parseDockerfile('FROM --network=host a')).toThrow(/FROM takes only --platform/);
    expect(() => parseDockerfile('FROM a AS x\nFROM b AS x')).toThrow(/two stages are called "x"/);
    expect(() => parseDockerfile('FROM a\nRUN x\nFROM b\nCOPY --from=1 /a /a')).toThrow(/line 4: --from=1 is not an earlier stage/);
    expect(() => parseDockerfile('FROM a\n' + 'RUN x\n'.repeat(2001))).toThrow(/more than 2000 instructions/);
  });

  it('validates chat values: build args, workspace paths, image names', () => {
    expect(buildArgs(['A=1', 'B=x=y', 'C='])).toEqual({ A: '1', B: 'x=y', C: '' });
    expect(() => buildArgs(['A'])).toThrow(/needs a value/);
    expect(() => buildArgs(['A=1', 'A=2'])).toThrow(/given twice/);
    expect(() => buildArgs(['$(id)=1'])).toThrow(/the name must be/);
    expect(() => buildArgs(['A=a\nb'])).toThrow(/one line/);
    expect(workspacePath('./docker/train.Dockerfile')).toBe('docker/train.Dockerfile');
    for (const bad of ['../x', '/etc/passwd', 'a/../../b', 'a//b', '-rf', 'a b']) expect(() => workspacePath(bad)).toThrow(/not a path inside your workspace/);
    expect(userImageName('my-net.v2')).toBe('my-net.v2');
    for (const bad of ['Caps', '-x', 'x-', 'a/b', 'a:1', 'a'.repeat(65)]) expect(() => userImageName(bad)).toThrow(/not an image name/);
  });

  it('parses the image commands', () => {
    expect(parseCommand('image build net --file d/Dockerfile --host gpu2 --build-arg A=1 --build-arg B=2')).toEqual({
      command: 'image',
      action: 'build',
      name: 'net',
      file: 'd/Dockerfile',
      host: 'gpu2',
      buildArgs: { A: '1', B: '2' },
    });
    expect(parseCommand('image build net')).toEqual({ command: 'image', action: 'build', name: 'net', file: 'Dockerfile', host: undefined, buildArgs: {} });
    expect(parseCommand('image rm net:3')).toEqual({ command: 'image', action: 'rm', name: 'net', version: 3 });
    expect(parseCommand('image rm net')).toEqual({ command: 'image', action: 'rm', name: 'net' });
    expect(parseCommand('image logs net')).toEqual({ command: 'image', action: 'logs', name: 'net' });
    expect(parseCommand('image ls')).toEqual({ command: 'image', action: 'ls' });
    expect(() => parseCommand('image ls --file x')).toThrow(/image ls takes no --file/);
    expect(() => parseCommand('image rm net:x')).toThrow(/the version must be a whole number/);
    expect(() => parseCommand('image push net')).toThrow(/unknown image action/);
    expect(() => parseCommand('image build')).toThrow(/needs a NAME/);
  });
});

describe('.dockerignore', () => {
  const ignore = new DockerIgnore('# comment\ndata\n*.ckpt\n**/__pycache__\nlogs/*\n!logs/keep.txt\n/abs\n');
  it.each([
    ['data', true],
    ['data/x/y.bin', true],
    ['src/data', false],
    ['model.ckpt', true],
    ['runs/model.ckpt', false],
    ['a/b/__pycache__/m.pyc', true],
    ['logs/run1.txt', true],
    ['logs/keep.txt', false],
    ['abs/x', true],
    ['train.py', false],
    ['', false],
  ])('%s excluded: %s', (p, excluded) => expect(ignore.excludes(p)).toBe(excluded));

  it('lets tar skip plain paths only when no exception could bring them back', () => {
    expect(new DockerIgnore('data\n*.ckpt\n./out/\n').literalExcludes()).toEqual(['data', 'out']);
    expect(ignore.literalExcludes()).toEqual([]);
  });
});

describe('hints', () => {
  const MB = 1024 ** 2;
  it('names a large apt layer without list cleanup, pip without --no-cache-dir, a single stage with a toolchain', () => {
    const file = parseDockerfile('FROM pytorch/pytorch:1\nRUN apt-get update && apt-get install -y build-essential\nRUN pip install torch\n');
    const layers = [
      { createdBy: '/bin/sh -c pip install torch', size: 5 * MB, fromBase: false },
      { createdBy: '/bin/sh -c apt-get update && apt-get install -y build-essential', size: 300 * MB, fromBase: false },
      { createdBy: '/bin/sh -c #(nop) ADD file:abc in / ', size: 900 * MB, fromBase: true },
    ];
    const h = hints(file, layers);
    expect(h).toHaveLength(3);
    expect(h[0]).toMatch(/apt-get install layer is 315 MB/);
    expect(h[1]).toMatch(/--no-cache-dir/);
    expect(h[2]).toMatch(/single stage carries a build toolchain/);
  });

  it('stays quiet for a tidy multi-stage build', () => {
    const file = parseDockerfile(
      'FROM pytorch/pytorch:1-devel AS build\nRUN apt-get install -y gcc && rm -rf /var/lib/apt/lists/*\nRUN pip install --no-cache-dir x\nFROM pytorch/pytorch:1\nCOPY --from=build /o /o\n',
    );
    expect(hints(file, [{ createdBy: '/bin/sh -c apt-get install -y gcc && rm -rf /var/lib/apt/lists/*', size: 300 * MB, fromBase: false }])).toEqual([]);
  });

  it('shows instructions as written', () => {
    expect(instructionText('/bin/sh -c #(nop)  COPY dir:0a1b in /opt/tool ')).toBe('COPY dir:0a1b in /opt/tool');
    expect(instructionText('|1 BASE=x /bin/sh -c make')).toBe('RUN make');
    expect(instructionText('/bin/sh -c pip install x')).toBe('RUN pip install x');
  });
});
