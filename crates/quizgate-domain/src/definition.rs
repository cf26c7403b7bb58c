use serde::{Deserialize, Serialize};

use crate::DomainError;

pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_QUESTIONS: usize = 100;
pub const MAX_QUESTION_CHARS: usize = 300;
pub const MIN_CHOICES: usize = 2;
pub const MAX_CHOICES: usize = 6;
pub const MAX_CHOICE_CHARS: usize = 120;
pub const MIN_TIME_LIMIT_MS: u64 = 1_000;
pub const MAX_TIME_LIMIT_MS: u64 = 300_000;
pub const MAX_POINTS: u32 = 10_000;

/// What a host submits to create a quiz. Immutable once created, so every node
/// may cache it for the life of the quiz.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuizDefinition {
    #[serde(default)]
    pub title: String,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub text: String,
    pub choices: Vec<String>,
    /// Index into `choices` of the right answer.
    #[serde(deserialize_with = "integer")]
    pub correct: u8,
    #[serde(default = "default_time_limit", deserialize_with = "integer")]
    pub time_limit_ms: u64,
    #[serde(default = "default_points", deserialize_with = "integer")]
    pub points: u32,
}

/// An unsigned integer that fits `T`, written as JSON writes integers: `3`,
/// or `3.0` (JSON Schema, and so the API description, counts both as the
/// integer 3). A fraction, a sign or a value out of range is refused in a
/// host's words.
fn integer<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64> + num_max::Max,
{
    struct Integer<T>(std::marker::PhantomData<T>);
    impl<T: TryFrom<u64> + num_max::Max> serde::de::Visitor<'_> for Integer<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "an integer from 0 to {}", T::MAX)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
            }
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
            // Exact below 2^53; every limit here is far below it.
            if v.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&v) {
                self.visit_u64(v as u64)
            } else {
                Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(Integer(std::marker::PhantomData))
}

/// The largest value of each integer type a definition holds, for messages.
mod num_max {
    pub(super) trait Max {
        const MAX: u64;
    }
    impl Max for u8 {
        const MAX: u64 = u8::MAX as u64;
    }
    impl Max for u32 {
        const MAX: u64 = u32::MAX as u64;
    }
    impl Max for u64 {
        const MAX: u64 = u64::MAX;
    }
}

fn default_time_limit() -> u64 {
    20_000
}

fn default_points() -> u32 {
    1_000
}

impl QuizDefinition {
    /// Checks every limit and names the first field that breaks one, as a JSON path
    /// (`questions[2].choices[0]`), so a host can fix its request.
    pub fn validate(&self) -> Result<(), DomainError> {
        check_text("title", &self.title, 0, MAX_TITLE_CHARS)?;
        if self.questions.is_empty() || self.questions.len() > MAX_QUESTIONS {
            return Err(DomainError::definition(
                "questions",
                format!("must hold 1 to {MAX_QUESTIONS} questions"),
            ));
        }
        for (i, q) in self.questions.iter().enumerate() {
            check_text(
                &format!("questions[{i}].text"),
                &q.text,
                1,
                MAX_QUESTION_CHARS,
            )?;
            if q.choices.len() < MIN_CHOICES || q.choices.len() > MAX_CHOICES {
                return Err(DomainError::definition(
                    format!("questions[{i}].choices"),
                    format!("must hold {MIN_CHOICES} to {MAX_CHOICES} choices"),
                ));
            }
            for (j, c) in q.choices.iter().enumerate() {
                check_text(
                    &format!("questions[{i}].choices[{j}]"),
                    c,
                    1,
                    MAX_CHOICE_CHARS,
                )?;
            }
            if usize::from(q.correct) >= q.choices.len() {
                return Err(DomainError::definition(
                    format!("questions[{i}].correct"),
                    "must index one of the choices",
                ));
            }
            if !(MIN_TIME_LIMIT_MS..=MAX_TIME_LIMIT_MS).contains(&q.time_limit_ms) {
                return Err(DomainError::definition(
                    format!("questions[{i}].time_limit_ms"),
                    format!("must be {MIN_TIME_LIMIT_MS} to {MAX_TIME_LIMIT_MS}"),
                ));
            }
            if q.points > MAX_POINTS {
                return Err(DomainError::definition(
                    format!("questions[{i}].points"),
                    format!("must be at most {MAX_POINTS}"),
                ));
            }
        }
        Ok(())
    }
}

fn check_text(field: &str, text: &str, min: usize, max: usize) -> Result<(), DomainError> {
    let n = text.chars().count();
    if n < min || n > max || text.trim().chars().count() < min {
        return Err(DomainError::definition(
            field,
            format!("must be {min} to {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(DomainError::definition(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> QuizDefinition {
        QuizDefinition {
            title: "Capitals".into(),
            questions: vec![
                Question {
                    text: "Capital of France?".into(),
                    choices: vec!["Lyon".into(), "Paris".into(), "Nice".into()],
                    correct: 1,
                    time_limit_ms: 10_000,
                    points: 1000,
                },
                Question {
                    text: "Capital of Peru?".into(),
                    choices: vec!["Lima".into(), "Cusco".into()],
                    correct: 0,
                    time_limit_ms: 20_000,
                    points: 2000,
                },
            ],
        }
    }

    #[test]
    fn sample_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn each_limit_names_its_field() {
        type Edit = fn(&mut QuizDefinition);
        let cases: &[(Edit, &str)] = &[
            (|d| d.title = "t".repeat(121), "title"),
            (|d| d.questions.clear(), "questions"),
            (
                |d| d.questions = vec![d.questions[0].clone(); 101],
                "questions",
            ),
            (|d| d.questions[1].text = " ".into(), "questions[1].text"),
            (
                |d| d.questions[0].text = "a\u{0}b".into(),
                "questions[0].text",
            ),
            (
                |d| d.questions[0].choices.truncate(1),
                "questions[0].choices",
            ),
            (
                |d| d.questions[0].choices = vec!["x".into(); 7],
                "questions[0].choices",
            ),
            (
                |d| d.questions[0].choices[2] = String::new(),
                "questions[0].choices[2]",
            ),
            (|d| d.questions[0].correct = 3, "questions[0].correct"),
            (
                |d| d.questions[1].time_limit_ms = 999,
                "questions[1].time_limit_ms",
            ),
            (
                |d| d.questions[1].time_limit_ms = 300_001,
                "questions[1].time_limit_ms",
            ),
            (|d| d.questions[0].points = 10_001, "questions[0].points"),
        ];
        for (edit, field) in cases {
            let mut d = sample();
            edit(&mut d);
            match d.validate() {
                Err(DomainError::InvalidDefinition { field: f, .. }) => assert_eq!(&f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
