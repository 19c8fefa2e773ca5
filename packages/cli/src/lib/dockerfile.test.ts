import { describe, expect, it } from 'vitest'
import { type DockerfilePlan, planDockerfile, portReadyCmd, substitute } from './dockerfile.js'

const plan = (lines: string[], args: Record<string, string> = {}) =>
  planDockerfile(`${lines.join('\n')}\n`, args)

describe('planDockerfile', () => {
  it.each<[string, string[], Record<string, string>, Partial<DockerfilePlan>]>([
    ['FROM only', ['FROM base'], {}, { from: 'base', steps: [], ignored: [] }],
    [
      'FROM an image on a loopback registry',
      ['FROM localhost:5000/team/app:v1'],
      {},
      { from: 'localhost:5000/team/app:v1' },
    ],
    [
      'RUN as root until USER, then as the current user',
      ['FROM base', 'RUN a', 'USER user', 'RUN b'],
      {},
      {
        steps: [
          { type: 'RUN', cmd: 'a', user: 'root' },
          { type: 'USER', user: 'user' },
          { type: 'RUN', cmd: 'b' },
        ],
      },
    ],
    [
      'RUN in exec form is read as JSON: spaces, quotes and escapes kept',
      ['FROM base', 'RUN ["echo", "a b", "q\\"x", "\\u0041", "$HOME"]'],
      {},
      { steps: [{ type: 'RUN', cmd: `echo 'a b' 'q"x' A '$HOME'`, user: 'root' }] },
    ],
    [
      'a bracket that is not JSON is a shell command',
      ['FROM base', 'RUN [ -f /x ] || echo no'],
      {},
      { steps: [{ type: 'RUN', cmd: '[ -f /x ] || echo no', user: 'root' }] },
    ],
    [
      'ARG default, overridden by --build-arg, exported to RUN and substituted',
      ['FROM base', 'ARG A=one', 'ARG B=two', 'ENV X=$A-${B}', 'RUN echo $A'],
      { B: 'given' },
      {
        steps: [
          { type: 'ENV', vars: { X: 'one-given' } },
          { type: 'RUN', cmd: 'export A=one B=given; echo $A', user: 'root' },
        ],
      },
    ],
    [
      'ARG before FROM names the image',
      ['ARG TAG=v2', 'FROM localhost:5000/app:$TAG'],
      {},
      { from: 'localhost:5000/app:v2' },
    ],
    [
      'COPY with --chown and --chmod; several sources go into a directory',
      ['FROM base', 'COPY --chown=user:user --chmod=0755 a b /dst', 'ADD c /one'],
      {},
      {
        steps: [
          { type: 'COPY', src: 'a', dest: '/dst/', user: 'user:user', mode: '0755' },
          { type: 'COPY', src: 'b', dest: '/dst/', user: 'user:user', mode: '0755' },
          { type: 'COPY', src: 'c', dest: '/one', user: 'root' },
        ],
      },
    ],
    [
      'COPY in exec form (a name with a space)',
      ['FROM base', 'USER user', 'COPY ["my file", "/d/"]'],
      {},
      {
        steps: [
          { type: 'USER', user: 'user' },
          { type: 'COPY', src: 'my file', dest: '/d/' },
        ],
      },
    ],
    [
      'WORKDIR and ENV with substitution',
      ['FROM base', 'ENV APP=/srv/app', 'WORKDIR $APP/sub'],
      {},
      {
        steps: [
          { type: 'ENV', vars: { APP: '/srv/app' } },
          { type: 'WORKDIR', path: '/srv/app/sub' },
        ],
      },
    ],
    [
      'CMD in exec form is the start command, EXPOSE its ready port',
      ['FROM base', 'EXPOSE 53/udp 8000/tcp 9000', 'CMD ["python3", "-m", "http.server", "8000"]'],
      {},
      { startCmd: 'python3 -m http.server 8000', readyPort: 8000, ignored: [] },
    ],
    [
      'EXPOSE without a start command readies nothing',
      ['FROM base', 'EXPOSE 8000'],
      {},
      { readyPort: undefined },
    ],
    [
      'exec ENTRYPOINT takes CMD as its arguments',
      ['FROM base', 'ENTRYPOINT ["node", "server.js"]', 'CMD ["--port", "80"]'],
      {},
      { startCmd: 'node server.js --port 80' },
    ],
    [
      'shell ENTRYPOINT ignores CMD',
      ['FROM base', 'ENTRYPOINT node server.js', 'CMD ["--port", "80"]'],
      {},
      { startCmd: 'node server.js' },
    ],
    [
      'shell CMD as written',
      ['FROM base', 'CMD python3 app.py > /tmp/log 2>&1'],
      {},
      { startCmd: 'python3 app.py > /tmp/log 2>&1' },
    ],
    [
      'instructions with no meaning for a template are listed',
      ['FROM base', 'LABEL a=b', 'VOLUME /data'],
      {},
      { ignored: ['LABEL (line 2)', 'VOLUME (line 3)'] },
    ],
  ])('%s', (_name, lines, args, want) => {
    const got = plan(lines, args)
    for (const [key, value] of Object.entries(want)) {
      expect(got[key as keyof DockerfilePlan], key).toEqual(value)
    }
  })

  it.each([
    [['RUN x'], 'no FROM instruction'],
    [['FROM a', 'FROM b'], 'multi-stage Dockerfiles are not supported'],
    [['FROM a AS build'], 'line 1: FROM with AS (a stage name) is not supported'],
    [['FROM a', 'COPY --from=x a b'], 'line 2: COPY --from is not supported'],
    [['FROM a', 'COPY --chmod=rwx a b'], 'line 2: COPY --chmod=rwx is not an octal mode'],
    [['FROM a', 'ADD https://x.test/f /f'], 'from a URL (https://x.test/f) is not supported'],
    [['FROM a', 'COPY onlyone'], 'line 2: COPY needs a source and a destination'],
    [['FROM a', 'EXPOSE http'], "line 2: EXPOSE 'http' is not a port"],
    [['FROM a', 'SHELL ["bash", "-c"]'], 'line 2: SHELL is not supported'],
  ])('refuses %j', (lines, message) => {
    expect(() => plan(lines)).toThrow(message)
  })
})

describe('substitute', () => {
  it.each([
    ['$A ${A}', { A: 'x' }, 'x x'],
    ['${MISSING:-dflt}', {}, 'dflt'],
    ['${A:-dflt}', { A: 'x' }, 'x'],
    ['${A:+alt}', { A: 'x' }, 'alt'],
    ['${A:+alt}', {}, ''],
    ['\\$A', { A: 'x' }, '$A'],
    ['$UNSET-end', {}, '-end'],
  ])('%s', (text, vars, want) => {
    expect(substitute(text, vars)).toBe(want)
  })
})

describe('portReadyCmd', () => {
  it.each([
    [8000, ':1F40 '],
    [80, ':0050 '],
    [65535, ':FFFF '],
  ])('%i', (port, hex) => {
    expect(portReadyCmd(port)).toContain(hex)
    expect(portReadyCmd(port)).toContain(' 0A ')
  })
})
