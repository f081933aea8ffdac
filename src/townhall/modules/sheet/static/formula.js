// Spreadsheet formula engine for the browser: the same grammar, functions and errors as the
// Python package townhall.modules.sheet.formulas (kept in agreement by a shared test corpus).
// Values: number, string, boolean, null (empty cell) or CellError. No dependencies.
// Usage: new Workbook({Sheet1: {"0,0": "2", "0,1": "=A1*3"}}, {today: "2024-01-15"})
//   .value("Sheet1", 0, 1) -> 6; rows/cols are 0-based; shiftFormula(...) rewrites references.

export const DIV0 = "#DIV/0!";
export const REF = "#REF!";
export const NAME = "#NAME?";
export const VALUE = "#VALUE!";
export const NA = "#N/A";
export const NUM = "#NUM!";
export const CIRC = "#CIRC!";
export const SYNTAX = "#ERROR!";
const MAX_DEPTH = 64;
const EXCEL_EPOCH_UNIX_DAYS = 25569; // serial number of 1970-01-01

export class CellError {
  constructor(code) {
    this.code = code;
  }
  toString() {
    return this.code;
  }
}

class Grid {
  constructor(rows) {
    this.rows = rows;
  }
  flat() {
    return this.rows.flat();
  }
}

class Fail extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

export const isError = (value) => value instanceof CellError;

// ---- values and coercions ----

const trim = (text) => text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
const NUMBER_RE = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

export function parseNumber(text) {
  const stripped = trim(text);
  if (!NUMBER_RE.test(stripped)) return null;
  const number = Number(stripped);
  return Number.isFinite(number) ? number : null;
}

export function parseLiteral(raw) {
  if (raw === "") return null;
  if (raw.startsWith("'")) return raw.slice(1);
  const number = parseNumber(raw);
  if (number !== null) return number;
  const stripped = trim(raw);
  if (stripped.endsWith("%")) {
    const part = parseNumber(stripped.slice(0, -1));
    if (part !== null) return part / 100;
  }
  return raw;
}

function scalar(arg) {
  if (arg instanceof Grid) {
    if (arg.rows.length === 1 && arg.rows[0].length === 1) return arg.rows[0][0];
    throw new Fail(VALUE);
  }
  return arg;
}

function toNumber(value) {
  if (value instanceof CellError) throw new Fail(value.code);
  if (value === null) return 0;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number") return value;
  const number = parseNumber(value);
  if (number === null) throw new Fail(VALUE);
  return number;
}

function toBool(value) {
  if (value instanceof CellError) throw new Fail(value.code);
  if (value === null) return false;
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  const upper = value.toUpperCase();
  if (upper === "TRUE" || upper === "FALSE") return upper === "TRUE";
  throw new Fail(VALUE);
}

function toText(value) {
  if (value instanceof CellError) throw new Fail(value.code);
  if (value === null) return "";
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
  if (typeof value === "number") return formatNumber(value);
  return value;
}

function checked(number) {
  if (!Number.isFinite(number)) throw new Fail(NUM);
  return number + 0;
}

export function formatNumber(number) {
  if (number === 0) return "0";
  if (Number.isInteger(number) && Math.abs(number) < 1e15) return String(number);
  const [mantissa, exponentText] = number.toExponential(14).split("e");
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace("-", "").replace(".", "").replace(/0+$/, "") || "0";
  const exponent = parseInt(exponentText, 10);
  if (exponent >= 15 || exponent < -9) {
    const tail = digits.length > 1 ? "." + digits.slice(1) : "";
    const size = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${digits[0]}${tail}E${exponent < 0 ? "-" : "+"}${size}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  const fraction = digits.slice(exponent + 1);
  return fraction ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
}

const rank = (value) => (typeof value === "boolean" ? 2 : typeof value === "string" ? 1 : 0);
const blankAs = (other) =>
  typeof other === "boolean" ? false : typeof other === "string" ? "" : 0;

function compare(left, right) {
  if (left instanceof CellError) throw new Fail(left.code);
  if (right instanceof CellError) throw new Fail(right.code);
  if (left === null) left = blankAs(right);
  if (right === null) right = blankAs(left);
  if (rank(left) !== rank(right)) return rank(left) < rank(right) ? -1 : 1;
  const a = typeof left === "string" ? left.toLowerCase() : left;
  const b = typeof right === "string" ? right.toLowerCase() : right;
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- tokenizer ----

const CELL = String.raw`\$?[A-Za-z]{1,3}\$?[1-9][0-9]*`;
const TOKEN_RE = new RegExp(
  [
    String.raw`(?<ws>[ \t\r\n]+)`,
    String.raw`(?<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)`,
    String.raw`(?<string>"(?:[^"]|"")*")`,
    String.raw`(?<ref>(?:(?<sheet>'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!)?(?<first>${CELL})(?::(?<last>${CELL}))?(?![A-Za-z0-9_.(!]))`,
    String.raw`(?<error>#(?:REF!|DIV\/0!|NAME\?|VALUE!|N\/A|NUM!|NULL!|CIRC!|ERROR!))`,
    String.raw`(?<name>[A-Za-z_][A-Za-z0-9_.]*)`,
    String.raw`(?<op><>|<=|>=|[-+*/^&=<>%(),])`,
  ].join("|"),
  "y",
);
const CELL_PARTS = /^(\$?)([A-Za-z]{1,3})(\$?)([0-9]+)$/;

export function columnIndex(letters) {
  let index = 0;
  for (const char of letters.toUpperCase()) index = index * 26 + char.charCodeAt(0) - 64;
  return index - 1;
}

export function columnName(index) {
  let name = "";
  index += 1;
  while (index > 0) {
    const rest = (index - 1) % 26;
    index = Math.floor((index - 1) / 26);
    name = String.fromCharCode(65 + rest) + name;
  }
  return name;
}

export function parseCell(text) {
  const match = CELL_PARTS.exec(text.trim());
  if (!match) throw new Error(`not a cell reference: ${text}`);
  const [, colAbs, letters, rowAbs, digits] = match;
  return { row: parseInt(digits, 10) - 1, col: columnIndex(letters), rowAbs: rowAbs === "$", colAbs: colAbs === "$" };
}

const renderCell = (cell) =>
  (cell.colAbs ? "$" : "") + columnName(cell.col) + (cell.rowAbs ? "$" : "") + String(cell.row + 1);

const unquoteSheet = (text) => (text.startsWith("'") ? text.slice(1, -1).replaceAll("''", "'") : text);

class TokenizeError extends Error {}

export function tokenize(text) {
  const tokens = [];
  let pos = 0;
  while (pos < text.length) {
    TOKEN_RE.lastIndex = pos;
    const match = TOKEN_RE.exec(text);
    if (!match || match[0].length === 0) throw new TokenizeError(`unexpected ${text[pos]} at ${pos}`);
    const groups = match.groups;
    const end = pos + match[0].length;
    if (groups.first !== undefined) {
      tokens.push({
        kind: "ref",
        text: match[0],
        start: pos,
        end,
        sheet: groups.sheet !== undefined ? unquoteSheet(groups.sheet) : null,
        first: parseCell(groups.first),
        last: groups.last !== undefined ? parseCell(groups.last) : null,
      });
    } else if (groups.ws === undefined) {
      const kind = ["number", "string", "error", "name", "op"].find((k) => groups[k] !== undefined);
      tokens.push({ kind, text: match[0], start: pos, end });
    }
    pos = end;
  }
  return tokens;
}

// ---- parser ----

const LEVELS = [
  new Set(["=", "<>", "<", ">", "<=", ">="]),
  new Set(["&"]),
  new Set(["+", "-"]),
  new Set(["*", "/"]),
  new Set(["^"]),
];

class ParseError extends Error {}

class Parser {
  constructor(tokens) {
    this.tokens = tokens;
    this.pos = 0;
    this.depth = 0;
  }
  peek() {
    return this.pos < this.tokens.length ? this.tokens[this.pos] : null;
  }
  isOp(...texts) {
    const token = this.peek();
    return token !== null && token.kind === "op" && texts.includes(token.text);
  }
  take() {
    const token = this.peek();
    if (token === null) throw new ParseError("unexpected end of formula");
    this.pos += 1;
    return token;
  }
  expect(text) {
    if (!this.isOp(text)) throw new ParseError(`expected ${text}`);
    this.pos += 1;
  }
  nest() {
    this.depth += 1;
    if (this.depth > MAX_DEPTH) throw new ParseError("formula nested too deeply");
  }
  expression(level = 0) {
    if (level === LEVELS.length) return this.unary();
    const first = this.expression(level + 1);
    const rest = [];
    while (this.isOp(...LEVELS[level])) {
      const op = this.take().text;
      rest.push([op, this.expression(level + 1)]);
    }
    return rest.length ? { t: "chain", first, rest } : first;
  }
  unary() {
    let node;
    if (this.isOp("-", "+")) {
      const op = this.take().text;
      this.nest();
      node = { t: "unary", op, operand: this.unary() };
      this.depth -= 1;
    } else {
      node = this.primary();
    }
    while (this.isOp("%")) {
      this.pos += 1;
      node = { t: "unary", op: "%", operand: node };
    }
    return node;
  }
  primary() {
    const token = this.take();
    if (token.kind === "number") {
      const number = Number(token.text);
      return lit(Number.isFinite(number) ? number : new CellError(NUM));
    }
    if (token.kind === "string") return lit(token.text.slice(1, -1).replaceAll('""', '"'));
    if (token.kind === "error") return lit(new CellError(token.text));
    if (token.kind === "ref") return { t: "ref", sheet: token.sheet, first: token.first, last: token.last };
    if (token.kind === "name") {
      const upper = token.text.toUpperCase();
      if (this.isOp("(")) return this.call(upper);
      if (upper === "TRUE" || upper === "FALSE") return lit(upper === "TRUE");
      return lit(new CellError(NAME)); // no named ranges: any other bare name is unknown
    }
    if (token.kind === "op" && token.text === "(") {
      this.nest();
      const node = this.expression();
      this.expect(")");
      this.depth -= 1;
      return node;
    }
    throw new ParseError(`unexpected ${token.text}`);
  }
  call(name) {
    this.expect("(");
    this.nest();
    const args = [];
    if (this.isOp(")")) {
      this.pos += 1;
    } else {
      for (;;) {
        args.push(this.isOp(",", ")") ? lit(null) : this.expression());
        if (this.isOp(")")) {
          this.pos += 1;
          break;
        }
        this.expect(",");
      }
    }
    this.depth -= 1;
    return { t: "call", name, args };
  }
}

const lit = (value) => ({ t: "lit", value });

export function parse(body) {
  let tokens;
  try {
    tokens = tokenize(body);
  } catch (error) {
    if (error instanceof TokenizeError) throw new ParseError(error.message);
    throw error;
  }
  const parser = new Parser(tokens);
  const node = parser.expression();
  if (parser.peek() !== null) throw new ParseError(`unexpected ${parser.take().text}`);
  return node;
}

function parseOrError(body) {
  try {
    return parse(body);
  } catch (error) {
    if (error instanceof ParseError) return lit(new CellError(SYNTAX));
    throw error;
  }
}

// ---- functions ----

function* values(args) {
  for (const arg of args) {
    if (arg instanceof Grid) for (const value of arg.flat()) yield [value, true];
    else yield [arg, false];
  }
}

function numbers(args) {
  const found = [];
  for (const [value, fromRef] of values(args)) {
    if (value instanceof CellError) throw new Fail(value.code);
    if (fromRef) {
      if (typeof value === "number") found.push(value);
    } else if (value !== null) {
      found.push(toNumber(value));
    }
  }
  return found;
}

function total(list) {
  let sum = 0;
  for (const number of list) sum += number;
  return checked(sum);
}

// Not Math.min(...list): spreading a huge range would overflow the call stack.
const extreme = (list, better) => list.reduce((m, x) => (better(x, m) ? x : m), list.length ? list[0] : 0);

function logicals(args) {
  const found = [];
  for (const [value, fromRef] of values(args)) {
    if (value instanceof CellError) throw new Fail(value.code);
    if (fromRef) {
      if (typeof value === "boolean" || typeof value === "number") found.push(Boolean(value));
    } else if (value !== null) {
      found.push(toBool(value));
    }
  }
  if (!found.length) throw new Fail(VALUE);
  return found;
}

function round(args) {
  const number = toNumber(scalar(args[0]));
  const digits = args.length > 1 ? Math.trunc(toNumber(scalar(args[1]))) : 0;
  if (digits > 15 || Math.abs(number) >= 1e15) return number;
  if (digits < -15) return 0;
  const factor = 10 ** Math.abs(digits);
  const scaled = digits >= 0 ? Math.abs(number) * factor : Math.abs(number) / factor;
  // Round the binary noise away first so ROUND(2.675, 2) is 2.68 as in Excel.
  const rounded = Math.floor(Number(scaled.toPrecision(15)) + 0.5);
  const result = digits >= 0 ? rounded / factor : rounded * factor;
  return checked(number < 0 ? -result : result);
}

const sameKind = (a, b) =>
  a !== null && (typeof a === "boolean") === (typeof b === "boolean") && (typeof a === "string") === (typeof b === "string");

function vlookup(args) {
  const needle = scalar(args[0]);
  if (needle instanceof CellError) throw new Fail(needle.code);
  const table = args[1];
  if (!(table instanceof Grid)) throw new Fail(VALUE);
  const column = Math.trunc(toNumber(scalar(args[2])));
  const approximate = args.length > 3 ? toBool(scalar(args[3])) : true;
  if (column < 1) throw new Fail(VALUE);
  if (column > table.rows[0].length) throw new Fail(REF);
  if (needle === null) throw new Fail(NA);
  let found = null;
  for (const row of table.rows) {
    const key = row[0];
    if (!sameKind(key, needle)) continue;
    const order = compare(key, needle);
    if (order === 0 && !approximate) {
      found = row;
      break;
    }
    if (approximate) {
      if (order > 0) break; // sorted data: nothing further can be <= the needle
      found = row;
    }
  }
  if (found === null) throw new Fail(NA);
  return found[column - 1];
}

function count(args) {
  let n = 0;
  for (const [value, fromRef] of values(args)) {
    if (fromRef) {
      if (typeof value === "number") n += 1;
    } else if (value !== null && !(value instanceof CellError)) {
      try {
        toNumber(value);
        n += 1;
      } catch (error) {
        if (!(error instanceof Fail)) throw error;
      }
    }
  }
  return n;
}

function concat(args) {
  let text = "";
  for (const [value] of values(args)) text += toText(value);
  return text;
}

function iferror(args) {
  let value;
  try {
    value = scalar(args[0]);
  } catch (error) {
    if (error instanceof Fail) return args[0]; // a whole range: nothing to replace
    throw error;
  }
  return value instanceof CellError ? args[1] : args[0];
}

// name: [min args, max args or null, implementation]
const FUNCTIONS = {
  SUM: [1, null, (a) => total(numbers(a))],
  AVERAGE: [
    1,
    null,
    (a) => {
      const list = numbers(a);
      if (!list.length) throw new Fail(DIV0);
      return checked(total(list) / list.length);
    },
  ],
  MIN: [1, null, (a) => extreme(numbers(a), (x, m) => x < m)],
  MAX: [1, null, (a) => extreme(numbers(a), (x, m) => x > m)],
  COUNT: [1, null, count],
  COUNTA: [1, null, (a) => [...values(a)].filter(([v]) => v !== null).length],
  IF: [2, 3, (a) => (toBool(scalar(a[0])) ? a[1] : a.length > 2 ? a[2] : false)],
  IFERROR: [2, 2, iferror],
  AND: [1, null, (a) => logicals(a).every(Boolean)],
  OR: [1, null, (a) => logicals(a).some(Boolean)],
  NOT: [1, 1, (a) => !toBool(scalar(a[0]))],
  ROUND: [1, 2, round],
  ABS: [1, 1, (a) => Math.abs(toNumber(scalar(a[0])))],
  CONCAT: [1, null, concat],
  CONCATENATE: [1, null, concat],
  LEN: [1, 1, (a) => [...toText(scalar(a[0]))].length],
  UPPER: [1, 1, (a) => toText(scalar(a[0])).toUpperCase()],
  LOWER: [1, 1, (a) => toText(scalar(a[0])).toLowerCase()],
  VLOOKUP: [3, 4, vlookup],
  TODAY: [0, 0, (a, env) => env.today],
};

// ---- evaluation ----

function binary(op, left, right) {
  if (op === "&") return toText(left) + toText(right);
  if (["=", "<>", "<", ">", "<=", ">="].includes(op)) {
    const order = compare(left, right);
    return { "=": order === 0, "<>": order !== 0, "<": order < 0, ">": order > 0, "<=": order <= 0, ">=": order >= 0 }[op];
  }
  const a = toNumber(left);
  const b = toNumber(right);
  if (op === "+") return checked(a + b);
  if (op === "-") return checked(a - b);
  if (op === "*") return checked(a * b);
  if (op === "/") {
    if (b === 0) throw new Fail(DIV0);
    return checked(a / b);
  }
  if (a === 0 && b <= 0) throw new Fail(b === 0 ? NUM : DIV0);
  if (a < 0 && !Number.isInteger(b)) throw new Fail(NUM);
  return checked(a ** b);
}

function evaluate(node, home, reader, env) {
  try {
    if (node.t === "lit") return node.value;
    if (node.t === "ref") {
      const last = node.last ?? node.first;
      return reader.grid(node.sheet ?? home, node.first.row, node.first.col, last.row, last.col);
    }
    if (node.t === "unary") {
      const operand = scalar(evaluate(node.operand, home, reader, env));
      if (node.op === "+") return operand;
      const number = toNumber(operand);
      return node.op === "-" ? -number + 0 : number / 100;
    }
    if (node.t === "chain") {
      let acc = scalar(evaluate(node.first, home, reader, env));
      for (const [op, operand] of node.rest) acc = binary(op, acc, scalar(evaluate(operand, home, reader, env)));
      return acc;
    }
    const spec = Object.hasOwn(FUNCTIONS, node.name) ? FUNCTIONS[node.name] : null;
    if (spec === null) return new CellError(NAME);
    const [low, high, impl] = spec;
    if (node.args.length < low || (high !== null && node.args.length > high)) return new CellError(SYNTAX);
    return impl(node.args.map((arg) => evaluate(arg, home, reader, env)), env);
  } catch (error) {
    if (error instanceof Fail) return new CellError(error.code);
    throw error;
  }
}

function resultValue(arg) {
  let value;
  try {
    value = scalar(arg);
  } catch (error) {
    if (error instanceof Fail) return new CellError(error.code);
    throw error;
  }
  return value === null ? 0 : value;
}

function* references(node) {
  const stack = [node];
  while (stack.length) {
    const current = stack.pop();
    if (current.t === "ref") yield current;
    else if (current.t === "unary") stack.push(current.operand);
    else if (current.t === "chain") stack.push(current.first, ...current.rest.map(([, x]) => x));
    else if (current.t === "call") stack.push(...current.args);
  }
}

/** Excel serial number of a date: a number, a "YYYY-MM-DD" string or a Date (local day). */
export function serialOf(day) {
  if (typeof day === "number") return day;
  const [y, m, d] =
    typeof day === "string"
      ? day.split("-").map(Number)
      : [day.getFullYear(), day.getMonth() + 1, day.getDate()];
  return Date.UTC(y, m - 1, d) / 86400000 + EXCEL_EPOCH_UNIX_DAYS;
}

const posKey = (row, col) => `${row},${col}`;

/** Computed values of a workbook given as {sheetName: {"row,col": rawText}} (0-based). */
export class Workbook {
  constructor(sheets, { today } = {}) {
    this.sheets = new Map();
    this.names = new Map();
    this.formulas = new Map();
    for (const [name, cells] of Object.entries(sheets)) {
      const map = new Map(Object.entries(cells).filter(([, raw]) => raw != null).map(([k, raw]) => [k, String(raw)]));
      this.sheets.set(name, map);
      this.names.set(name.toLowerCase(), name);
      this.formulas.set(name, new Set([...map].filter(([, raw]) => raw.startsWith("=")).map(([k]) => k)));
    }
    this.env = { today: serialOf(today ?? new Date()) };
    this.parsed = new Map();
    this.deps = new Map();
    this.values = new Map();
  }

  /** Change one cell's raw text (null or "" clears); values are recomputed when next read. */
  setCell(sheet, row, col, raw) {
    const name = this.sheetName(sheet);
    if (name === null) return;
    const key = posKey(row, col);
    const cells = this.sheets.get(name);
    const formulas = this.formulas.get(name);
    const wasFormula = formulas.has(key);
    const text = raw === null || raw === undefined ? "" : String(raw);
    if (text === "") cells.delete(key);
    else cells.set(key, text);
    const isFormula = text.startsWith("=");
    if (isFormula) formulas.add(key);
    else formulas.delete(key);
    this.parsed.delete(`${name}!${key}`);
    // Dependency lists name the formulas inside each range: they change only with that set.
    if (wasFormula !== isFormula) this.deps.clear();
    else this.deps.delete(`${name}!${key}`);
    this.values.clear();
  }

  sheetName(name) {
    return this.names.get(name.toLowerCase()) ?? null;
  }

  grid(sheet, top, left, bottom, right) {
    const name = this.sheetName(sheet);
    if (name === null) return new CellError(REF);
    [top, bottom] = [Math.min(top, bottom), Math.max(top, bottom)];
    [left, right] = [Math.min(left, right), Math.max(left, right)];
    const rows = [];
    for (let row = top; row <= bottom; row += 1) {
      const line = [];
      for (let col = left; col <= right; col += 1) line.push(this.value(name, row, col));
      rows.push(line);
    }
    return new Grid(rows);
  }

  value(sheet, row, col) {
    const name = this.sheetName(sheet);
    if (name === null) return new CellError(REF);
    const raw = this.sheets.get(name).get(posKey(row, col));
    if (raw === undefined || raw === null) return null;
    if (!raw.startsWith("=")) return parseLiteral(raw);
    const key = `${name}!${posKey(row, col)}`;
    if (!this.values.has(key)) this.compute(key);
    return this.values.get(key);
  }

  range(sheet, top, left, bottom, right) {
    const grid = this.grid(sheet, top, left, bottom, right);
    if (grid instanceof CellError) throw new Error(`unknown sheet ${sheet}`);
    return grid.rows;
  }

  evaluateAll() {
    const out = {};
    for (const [name, cells] of this.sheets) {
      out[name] = {};
      for (const key of cells.keys()) {
        const [row, col] = key.split(",").map(Number);
        out[name][key] = this.value(name, row, col);
      }
    }
    return out;
  }

  split(key) {
    const bang = key.lastIndexOf("!");
    const [row, col] = key.slice(bang + 1).split(",").map(Number);
    return [key.slice(0, bang), row, col];
  }

  node(key) {
    if (!this.parsed.has(key)) {
      const [name, row, col] = this.split(key);
      this.parsed.set(key, parseOrError(this.sheets.get(name).get(posKey(row, col)).slice(1)));
    }
    return this.parsed.get(key);
  }

  dependencies(key) {
    if (this.deps.has(key)) return this.deps.get(key);
    const found = new Set();
    const home = this.split(key)[0];
    for (const ref of references(this.node(key))) {
      const name = this.sheetName(ref.sheet ?? home);
      if (name === null) continue;
      const last = ref.last ?? ref.first;
      const [top, bottom] = [Math.min(ref.first.row, last.row), Math.max(ref.first.row, last.row)];
      const [left, right] = [Math.min(ref.first.col, last.col), Math.max(ref.first.col, last.col)];
      const formulas = this.formulas.get(name);
      if ((bottom - top + 1) * (right - left + 1) <= formulas.size) {
        for (let r = top; r <= bottom; r += 1)
          for (let c = left; c <= right; c += 1) if (formulas.has(posKey(r, c))) found.add(`${name}!${posKey(r, c)}`);
      } else {
        for (const pos of formulas) {
          const [r, c] = pos.split(",").map(Number);
          if (top <= r && r <= bottom && left <= c && c <= right) found.add(`${name}!${pos}`);
        }
      }
    }
    const list = [...found];
    this.deps.set(key, list);
    return list;
  }

  // Iterative Tarjan: each strongly connected component is finished dependencies-first.
  compute(start) {
    const index = new Map();
    const low = new Map();
    const stack = [];
    const onStack = new Set();
    const work = [];
    const enter = (key) => {
      index.set(key, index.size);
      low.set(key, index.get(key));
      stack.push(key);
      onStack.add(key);
      work.push([key, this.dependencies(key), 0]);
    };
    enter(start);
    while (work.length) {
      const frame = work[work.length - 1];
      const [key, deps] = frame;
      let entered = false;
      while (frame[2] < deps.length) {
        const dep = deps[frame[2]];
        frame[2] += 1;
        if (this.values.has(dep)) continue;
        if (!index.has(dep)) {
          enter(dep);
          entered = true;
          break;
        }
        if (onStack.has(dep)) low.set(key, Math.min(low.get(key), index.get(dep)));
      }
      if (entered) continue;
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(key)));
      }
      if (low.get(key) === index.get(key)) this.finish(key, stack, onStack);
    }
  }

  finish(root, stack, onStack) {
    const component = [];
    for (;;) {
      const key = stack.pop();
      onStack.delete(key);
      component.push(key);
      if (key === root) break;
    }
    if (component.length > 1 || this.dependencies(root).includes(root)) {
      for (const key of component) this.values.set(key, new CellError(CIRC));
      return;
    }
    const env = this.env;
    this.values.set(root, resultValue(evaluate(this.node(root), this.split(root)[0], this, env)));
  }
}

// ---- reference shifting ----

function shiftSpan(start, end, at, count) {
  if (count >= 0) return [start >= at ? start + count : start, end >= at ? end + count : end];
  const goneEnd = at - count; // first index after the deleted block
  if (start >= at && end < goneEnd) return null;
  const newStart = start < at ? start : start < goneEnd ? at : start + count;
  const newEnd = end < at ? end : end < goneEnd ? at - 1 : end + count;
  return [newStart, newEnd];
}

/**
 * Formula text after `count` rows/cols ("row" | "col") are inserted (count > 0) or deleted
 * (count < 0) at 0-based index `at` of `sheet`; `home` is the formula's own sheet.
 */
export function shiftFormula(text, sheet, axis, at, count, home = null) {
  if (!text.startsWith("=") || count === 0) return text;
  const body = text.slice(1);
  let tokens;
  try {
    tokens = tokenize(body);
  } catch (error) {
    if (error instanceof TokenizeError) return text;
    throw error;
  }
  const homeName = (home ?? sheet).toLowerCase();
  const along = (cell) => (axis === "row" ? cell.row : cell.col);
  const moved = (cell, index) => (axis === "row" ? { ...cell, row: index } : { ...cell, col: index });
  const out = [];
  let pos = 0;
  for (const token of tokens) {
    if (token.kind !== "ref") continue;
    if ((token.sheet ?? homeName).toLowerCase() !== sheet.toLowerCase()) continue;
    const first = token.first;
    const last = token.last ?? token.first;
    const span = shiftSpan(Math.min(along(first), along(last)), Math.max(along(first), along(last)), at, count);
    let replacement;
    if (span === null) {
      replacement = "#REF!";
    } else {
      const swapped = along(first) > along(last);
      const newFirst = moved(first, swapped ? span[1] : span[0]);
      const newLast = moved(last, swapped ? span[0] : span[1]);
      const prefix = token.sheet !== null ? token.text.slice(0, token.text.lastIndexOf("!") + 1) : "";
      replacement = prefix + renderCell(newFirst) + (token.last !== null ? ":" + renderCell(newLast) : "");
    }
    if (replacement.toLowerCase() === token.text.toLowerCase()) continue;
    out.push(body.slice(pos, token.start), replacement);
    pos = token.end;
  }
  out.push(body.slice(pos));
  return "=" + out.join("");
}
