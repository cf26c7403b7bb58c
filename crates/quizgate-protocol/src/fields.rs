//! A client frame's top-level fields, read the same way from both encodings.
//!
//! Every client frame is one flat object. Reading it into a list of named
//! scalar values first, and only then into a [`crate::ClientFrame`], gives both
//! encodings one set of rules: the top level must be a map with string keys and
//! nothing after it; nesting is bounded; nothing is allocated from a length a
//! frame declares, only from bytes it really holds.

/// Deepest nesting a frame may have (client frames need 1).
const MAX_DEPTH: usize = 16;

/// One top-level value, as far as a client frame cares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    /// Any integer; i128 holds every MessagePack and JSON integer exactly.
    Int(i128),
    Float,
    Bool,
    Nil,
    Array,
    Map,
    Binary,
}

impl Value {
    /// What a client author would call this kind of value.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Str(_) => "a string",
            Self::Int(_) => "an integer",
            Self::Float => "a number with a fraction",
            Self::Bool => "a boolean",
            Self::Nil => "null",
            Self::Array => "an array",
            Self::Map => "an object",
            Self::Binary => "binary data",
        }
    }
}

pub(crate) type Fields = Vec<(String, Value)>;

/// Reads a JSON object's fields; `Err` says why it is not one.
pub(crate) fn from_json(bytes: &[u8]) -> Result<Fields, String> {
    // serde_json refuses trailing data and nests at most 128 deep.
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => "not a JSON object".to_owned(),
            _ => format!("not valid JSON: {e}"),
        })?;
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => Value::Str(s),
                serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => Value::Int(i128::from(u)),
                    (_, Some(i)) => Value::Int(i128::from(i)),
                    _ => Value::Float,
                },
                serde_json::Value::Bool(_) => Value::Bool,
                serde_json::Value::Null => Value::Nil,
                serde_json::Value::Array(_) => Value::Array,
                serde_json::Value::Object(_) => Value::Map,
            };
            (k, v)
        })
        .collect())
}

/// Reads a MessagePack map's fields; `Err` says why it is not one.
pub(crate) fn from_msgpack(bytes: &[u8]) -> Result<Fields, String> {
    let mut r = Reader { bytes, pos: 0 };
    let len = match r.byte() {
        Ok(marker) => r.map_len(marker)?,
        Err(_) => None, // an empty frame
    };
    let Some(len) = len else {
        return Err("not a MessagePack map".into());
    };
    r.check_room((len as u64).saturating_mul(2))?;
    let mut fields = Vec::new();
    for _ in 0..len {
        let key = match r.value(0)? {
            Value::Str(s) => s,
            other => return Err(format!("a map key is {}, not a string", other.kind())),
        };
        let value = r.value(0)?;
        fields.push((key, value));
    }
    if r.pos != bytes.len() {
        return Err(format!("{} bytes after the map", bytes.len() - r.pos));
    }
    Ok(fields)
}

/// A MessagePack reader that only walks: it never allocates from a declared
/// length, and checks every length against the bytes left before using it.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("truncated MessagePack")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn int(&mut self, n: usize) -> Result<i128, String> {
        let raw = self.uint(n)?;
        let shift = 64 - 8 * n as u32;
        Ok(i128::from(((raw << shift) as i64) >> shift))
    }

    /// The length of the map that `marker` (already read) starts, reading the
    /// rest of its header; `None` if `marker` starts no map.
    fn map_len(&mut self, marker: u8) -> Result<Option<usize>, String> {
        Ok(match marker {
            0x80..=0x8f => Some(usize::from(marker & 0x0f)),
            0xde => Some(self.uint(2)? as usize),
            0xdf => Some(self.uint(4)? as usize),
            _ => None,
        })
    }

    /// Elements that claim more room than is left are refused before any work.
    fn check_room(&self, elements: u64) -> Result<(), String> {
        if elements > (self.bytes.len() - self.pos) as u64 {
            return Err("a length larger than the frame".into());
        }
        Ok(())
    }

    fn skip(&mut self, elements: u64, depth: usize) -> Result<(), String> {
        self.check_room(elements)?;
        for _ in 0..elements {
            self.value(depth + 1)?;
        }
        Ok(())
    }

    fn str(&mut self, len: usize) -> Result<Value, String> {
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(|s| Value::Str(s.to_owned()))
            .map_err(|_| "a string that is not UTF-8".into())
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => Value::Int(i128::from(marker)),
            0xe0..=0xff => Value::Int(i128::from(marker as i8)),
            0xc0 => Value::Nil,
            0xc2 | 0xc3 => Value::Bool,
            0xcc => Value::Int(i128::from(self.uint(1)?)),
            0xcd => Value::Int(i128::from(self.uint(2)?)),
            0xce => Value::Int(i128::from(self.uint(4)?)),
            0xcf => Value::Int(i128::from(self.uint(8)?)),
            0xd0 => Value::Int(self.int(1)?),
            0xd1 => Value::Int(self.int(2)?),
            0xd2 => Value::Int(self.int(4)?),
            0xd3 => Value::Int(self.int(8)?),
            0xca => {
                self.take(4)?;
                Value::Float
            }
            0xcb => {
                self.take(8)?;
                Value::Float
            }
            0xa0..=0xbf => self.str(usize::from(marker & 0x1f))?,
            0xd9 => {
                let n = self.uint(1)? as usize;
                self.str(n)?
            }
            0xda => {
                let n = self.uint(2)? as usize;
                self.str(n)?
            }
            0xdb => {
                let n = self.uint(4)? as usize;
                self.str(n)?
            }
            0xc4..=0xc6 => {
                let n = self.uint(1 << (marker - 0xc4))? as usize;
                self.take(n)?;
                Value::Binary
            }
            0x90..=0x9f => {
                self.skip(u64::from(marker & 0x0f), depth)?;
                Value::Array
            }
            0xdc | 0xdd => {
                let n = self.uint(if marker == 0xdc { 2 } else { 4 })?;
                self.skip(n, depth)?;
                Value::Array
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let n = self.map_len(marker)?.unwrap_or_default() as u64;
                self.skip(n.saturating_mul(2), depth)?;
                Value::Map
            }
            // fixext 1/2/4/8/16, then ext 8/16/32: a type byte and data.
            0xd4..=0xd8 => {
                self.take(1 + (1 << (marker - 0xd4)))?;
                Value::Binary
            }
            0xc7..=0xc9 => {
                let n = self.uint(1 << (marker - 0xc7))? as usize;
                self.take(1 + n)?;
                Value::Binary
            }
            0xc1 => return Err("the never-used MessagePack byte 0xc1".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(v: serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(&v).expect("encode")
    }

    #[test]
    fn both_encodings_give_the_same_fields() {
        let v = serde_json::json!({"t": "x", "n": -3, "big": 9007199254740993u64, "f": 1.5,
            "b": true, "z": null, "a": [1, [2]], "m": {"k": 1}});
        let mut a = from_json(v.to_string().as_bytes()).expect("json");
        let mut b = from_msgpack(&mp(v)).expect("msgpack");
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(a, b);
    }

    #[test]
    fn msgpack_that_is_not_one_flat_map_is_refused() {
        let mut trailing = mp(serde_json::json!({"t": "ping"}));
        trailing.push(0xc0);
        let int_key = vec![0x81, 0x01, 0xa4, b'p', b'i', b'n', b'g'];
        // A map claiming 2^32-1 entries in 5 bytes.
        let huge = vec![0xdf, 0xff, 0xff, 0xff, 0xff];
        let huge_array = vec![0x81, 0xa1, b't', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01];
        let mut deep = vec![0x81, 0xa1, b'a'];
        deep.extend(std::iter::repeat_n(0x91, 100));
        deep.push(0x01);
        let cases: &[(&[u8], &str)] = &[
            (&trailing, "after the map"),
            (&int_key, "key"),
            (&huge, "larger than the frame"),
            (&huge_array, "larger than the frame"),
            (&deep, "nested deeper"),
            (&[0x92, 0x01, 0x02], "not a MessagePack map"),
            (&[0xc1], "not a MessagePack map"),
            (&[0x81, 0xa1, 0x01], "truncated"),
        ];
        for (bytes, want) in cases {
            let err = from_msgpack(bytes).expect_err("refused");
            assert!(err.contains(want), "{bytes:x?}: {err}");
        }
    }

    #[test]
    fn json_that_is_not_an_object_is_refused() {
        for raw in ["[1,2]", "7", "\"t\"", "{\"t\":\"ping\"} x", "{"] {
            assert!(from_json(raw.as_bytes()).is_err(), "{raw}");
        }
    }
}
